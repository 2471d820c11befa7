namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    // A flush is not a record in the queue but a count to wait for: the writer completes queued writes in queue order,
    // so once it has completed as many as had been queued when the flush was asked for, every write queued before
    // that is durable. XEP-0198 acks flush, and a client may ask for one after every message: flushes asked for while
    // the previous one still waits in the queue share its task (its count is raised to cover them), so a group commit
    // answers all of them at once and a session can send their acks together.
    private sealed class FlushWaiter(long target)
    {
        public long Target { get; set; } = target;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly Lock _flushGate = new();
    private readonly Queue<FlushWaiter> _flushes = new();
    private FlushWaiter? _lastFlush;
    private long _queuedCount;  // writes ever queued, counted before they enter the queue
    private long _takenCount;   // writes the writer has taken from the queue (under _flushGate)
    private long _doneCount;    // writes the writer has completed or failed, in queue order (under _flushGate)

    // Completes when every write queued before it is durable; at once when nothing is pending.
    public Task FlushAsync()
    {
        if (_fault is { } fault) return Task.FromException(fault);
        if (Volatile.Read(ref _pending) == 0) return Task.CompletedTask;
        var target = Interlocked.Read(ref _queuedCount);
        lock (_flushGate)
        {
            if (_fault is { } failed) return Task.FromException(failed);
            if (_doneCount >= target) return Task.CompletedTask;
            if (_lastFlush is { } last && last.Target > _takenCount)
            {
                // The writer has not taken all the last flush waits for: what was queued since goes in the same group.
                last.Target = Math.Max(last.Target, target);
                return last.Done.Task;
            }
            var waiter = new FlushWaiter(Math.Max(target, _lastFlush?.Target ?? 0));
            _flushes.Enqueue(waiter);
            _lastFlush = waiter;
            return waiter.Done.Task;
        }
    }

    // Writer thread: a batch was taken from the queue.
    private void Taken(int count)
    {
        lock (_flushGate)
            _takenCount += count;
    }

    // Writer thread: queued writes were completed (or failed); flushes they cover are done.
    private void Done(int count)
    {
        if (count == 0) return;
        lock (_flushGate)
        {
            _doneCount += count;
            while (_flushes.TryPeek(out var waiter) && waiter.Target <= _doneCount)
            {
                _flushes.Dequeue();
                if (waiter == _lastFlush) _lastFlush = null;
                waiter.Done.TrySetResult();
            }
        }
    }

    // Writer thread, once it stops: after a failure no flush can complete; after the queue was closed, every write
    // that entered it is done (one refused at the closed queue was counted but failed on the spot).
    private void EndFlushes(Exception? error)
    {
        lock (_flushGate)
        {
            while (_flushes.TryDequeue(out var waiter))
            {
                if (error is null) waiter.Done.TrySetResult();
                else waiter.Done.TrySetException(error);
            }
            _lastFlush = null;
        }
    }
}
