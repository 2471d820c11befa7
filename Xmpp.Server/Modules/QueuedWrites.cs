using System.Collections.Concurrent;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules;

/// Storage writes a module queues per account without waiting for them (offline spool, archive), so a sender's stream
/// is not held by every commit. The storage writer keeps their order; this keeps, per account, the last one queued,
/// so a reader of that account (the spool drain, an archive query) can wait until what was queued before it is stored.
/// When the writer falls behind by more than MaxPending writes, the stanza that queued one waits for it: the sender's
/// stream slows to the disk's pace (TCP pushes back on the client) instead of the queue growing without end.
public sealed class QueuedWrites(IStorage storage)
{
    public const int MaxPending = 10_000;

    private readonly ConcurrentDictionary<string, Task> _last = new(StringComparer.Ordinal);

    /// Tracks a queued write for the account and tells the session whose stanza caused it (its next IQ is answered
    /// once the write is durable); waits for the write only while the writer is behind. Failures are the caller's to
    /// report, on the task it passed in.
    public async ValueTask AddAsync(string account, Task write, ClientSession? origin)
    {
        _last[account] = write;
        _ = write.ContinueWith(t => _last.TryRemove(new KeyValuePair<string, Task>(account, t)), TaskScheduler.Default);
        origin?.NoteQueuedWrite();
        if (storage.PendingWrites > MaxPending) await WaitQuietlyAsync(write);
    }

    /// Completes once every write queued so far for the account is stored (or has failed).
    public ValueTask WaitAsync(string account) =>
        _last.TryGetValue(account, out var last) ? WaitQuietlyAsync(last) : ValueTask.CompletedTask;

    private static async ValueTask WaitQuietlyAsync(Task write)
    {
        try { await write; }
        catch (Exception) { } // reported by whoever queued it
    }
}
