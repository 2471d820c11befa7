namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    // Flushes wait for a count of queued writes, and those asked together share one task (FlushWaiters).
    private readonly FlushWaiters _flushes = new();

    // Completes when every write queued before it is durable; at once when nothing is pending. After a failure no
    // flush can complete.
    public Task FlushAsync()
    {
        if (_fault is { } fault) return Task.FromException(fault);
        if (Volatile.Read(ref _pending) == 0) return Task.CompletedTask;
        return _flushes.WaitAsync();
    }
}
