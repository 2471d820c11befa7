namespace Xmpp.Storage;

/// The flushes of a queue that one writer empties, finishing its writes in queue order (the log archive, the
/// PostgreSQL writer). A flush is not a record in the queue but a count to wait for: once the writer has finished as
/// many writes as had been counted when the flush was asked for, every write queued before it is finished. XEP-0198
/// acks flush, and a client may ask for one after every message: a flush asked while the writer has not yet taken all
/// that the previous one waits for joins it (its count is raised to cover the new writes), so one group commit answers
/// all of them with one task and a session can send their acks together.
internal sealed class FlushWaiters
{
    private sealed class Waiter(long target)
    {
        public long Target { get; set; } = target;

        // Continuations must not run on the writer: they would delay its next group.
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly Lock _gate = new();
    private readonly Queue<Waiter> _waiting = new();
    private Waiter? _last;
    private long _queued;       // writes ever counted (Interlocked)
    private long _taken;        // under _gate: writes the writer has taken from the queue
    private long _done;         // under _gate: writes the writer has finished (committed or failed), in queue order
    private bool _ended;        // under _gate: the writer has stopped
    private Exception? _error;  // under _gate: why it stopped, if it failed

    /// A write is about to enter the queue: counted before it does, so every write ahead of it was counted before it.
    public void Queued() => Interlocked.Increment(ref _queued);

    /// Completes when every write counted before this call is finished; at once when the writer has stopped without an
    /// error, faulted when it stopped with one.
    public Task WaitAsync()
    {
        var target = Interlocked.Read(ref _queued);
        lock (_gate)
        {
            if (_ended) return _error is null ? Task.CompletedTask : Task.FromException(_error);
            if (_done >= target) return Task.CompletedTask;
            if (_last is { } last && last.Target > _taken)
            {
                last.Target = Math.Max(last.Target, target);
                return last.Done.Task;
            }
            var waiter = new Waiter(Math.Max(target, _last?.Target ?? 0));
            _waiting.Enqueue(waiter);
            _last = waiter;
            return waiter.Done.Task;
        }
    }

    /// Writer: count writes were taken from the queue.
    public void Taken(int count)
    {
        lock (_gate)
            _taken += count;
    }

    /// Writer: count more writes were finished (committed or failed); the flushes they cover complete.
    public void Done(int count)
    {
        if (count == 0) return;
        lock (_gate)
        {
            _done += count;
            while (_waiting.TryPeek(out var waiter) && waiter.Target <= _done)
            {
                _waiting.Dequeue();
                if (waiter == _last) _last = null;
                waiter.Done.TrySetResult();
            }
        }
    }

    /// Writer, once it stops: nothing may wait for it any more. Flushes still waiting complete, or fail with error.
    public void End(Exception? error)
    {
        lock (_gate)
        {
            _ended = true;
            _error = error;
            while (_waiting.TryDequeue(out var waiter))
            {
                if (error is null) waiter.Done.TrySetResult();
                else waiter.Done.TrySetException(error);
            }
            _last = null;
        }
    }
}
