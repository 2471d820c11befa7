using System.Collections.Concurrent;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules;

/// Storage writes a module queues per account without waiting for them (offline spool, archive), so a sender's stream
/// is not held by every commit. The storage writer keeps their order; this keeps, per account, the last one queued,
/// so a reader of that account (the spool drain, an archive query) can wait until what was queued before it is stored.
/// When the writer falls behind by more than MaxPending writes, the stanza that queued one waits for it: the sender's
/// stream slows to the disk's pace (TCP pushes back on the client) instead of the queue growing without end.
///
/// A failed write is reported to onFault (if given) when a sweep finds it: cheaper than a continuation on
/// every write, and nothing goes unreported with the stores in use, which stop at their first failure and fail every
/// write queued after it, so the account's last tracked write fails too.
public sealed class QueuedWrites(IStorage storage, Action<string, Exception>? onFault = null)
{
    public const int MaxPending = 10_000;

    private readonly ConcurrentDictionary<string, Task> _last = new(StringComparer.Ordinal);
    private int _addsSinceSweep;

    /// Tracks a queued write for the account and tells the session whose stanza caused it (its next IQ is answered
    /// once the write is durable); waits for the write only while the writer is behind.
    public ValueTask AddAsync(string account, Task write, ISession? origin)
    {
        _last[account] = write;
        // Finished writes are dropped in sweeps, not by a continuation per write: one of those per archived message
        // was a thread-pool work item each, a visible share of the CPU at tens of thousands of messages per second.
        // Sweeping once the adds since the last sweep reach half the entries visits about two entries per add.
        if (Interlocked.Increment(ref _addsSinceSweep) >= Math.Max(SweepAtLeast, _last.Count / 2)) Sweep();
        origin?.NoteQueuedWrite();
        return storage.PendingWrites > MaxPending ? WaitQuietlyAsync(write) : ValueTask.CompletedTask;
    }

    private const int SweepAtLeast = 4096;

    private void Sweep()
    {
        Volatile.Write(ref _addsSinceSweep, 0);
        foreach (var (account, write) in _last)
        {
            if (!write.IsCompleted || !_last.TryRemove(new KeyValuePair<string, Task>(account, write))) continue;
            if (write.Exception is { } failed) onFault?.Invoke(account, failed.GetBaseException());
        }
    }

    /// Accounts with a write still tracked (finished ones linger until the next sweep).
    internal int Tracked => _last.Count;

    /// Completes once every write queued so far for the account is stored (or has failed).
    public ValueTask WaitAsync(string account) =>
        _last.TryGetValue(account, out var last) ? WaitQuietlyAsync(last) : ValueTask.CompletedTask;

    private static async ValueTask WaitQuietlyAsync(Task write)
    {
        try { await write; }
        catch (Exception) { } // reported by a sweep, to onFault
    }
}
