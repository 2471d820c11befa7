using System.Threading.Tasks.Sources;

namespace Xmpp.Server.Streams;

/// A connection's queue of outgoing items: any thread writes, one writer loop waits and reads, and completing it ends
/// the loop once drained (what Channel.CreateUnbounded gave, for the three operations used). The channel held a
/// 32-slot segment and its waiter objects for the connection's whole life, ~1.9 KiB per idle session; this queue makes
/// its array on the first write, keeps a small one (4 slots) for the next burst and reuses one waiter.
internal sealed class SendQueue<T> : IValueTaskSource<bool>
{
    private readonly Lock _lock = new();
    private Queue<T>? _items;
    private int _count;
    private int _peak;
    private const int KeptCapacity = 32;
    private bool _completed;
    private bool _waiting;
    private ManualResetValueTaskSourceCore<bool> _waiter = new() { RunContinuationsAsynchronously = true };

    /// Items written and not yet read; read without the lock, so only a hint between threads.
    public int Count => Volatile.Read(ref _count);

    public bool TryWrite(T item)
    {
        lock (_lock)
        {
            if (_completed) return false;
            (_items ??= new Queue<T>(4)).Enqueue(item);
            Volatile.Write(ref _count, _items.Count);
            if (_items.Count > _peak) _peak = _items.Count;
            if (!_waiting) return true;
            _waiting = false;
        }
        _waiter.SetResult(true);
        return true;
    }

    /// No more writes; the reader still gets what was queued before, then WaitToReadAsync answers false.
    public bool TryComplete()
    {
        lock (_lock)
        {
            if (_completed) return false;
            _completed = true;
            if (!_waiting) return true;
            _waiting = false;
        }
        _waiter.SetResult(false);
        return true;
    }

    public bool TryRead(out T item)
    {
        lock (_lock)
        {
            if (_items is { Count: > 0 } items)
            {
                item = items.Dequeue();
                Volatile.Write(ref _count, items.Count);
                // Drained after a burst: the grown array goes, so an idle connection keeps at most a small one (a
                // steady sender keeps reusing it without allocating per message).
                if (items.Count == 0 && _peak > KeptCapacity)
                {
                    _items = null;
                    _peak = 0;
                }
                return true;
            }
        }
        item = default!;
        return false;
    }

    /// True when an item can be read, false once completed and drained. One reader only.
    public ValueTask<bool> WaitToReadAsync()
    {
        lock (_lock)
        {
            if (_items is { Count: > 0 }) return new ValueTask<bool>(true);
            if (_completed) return new ValueTask<bool>(false);
            _waiter.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _waiter.Version);
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _waiter.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _waiter.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token,
        ValueTaskSourceOnCompletedFlags flags) => _waiter.OnCompleted(continuation, state, token, flags);
}
