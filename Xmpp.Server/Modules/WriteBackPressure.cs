using Xmpp.Storage;

namespace Xmpp.Server.Modules;

/// Modules queue archive and spool writes without waiting for them, so a sender's stream is not held by every
/// commit. When the storage writer falls behind by more than MaxPending writes, the stanza that queued one waits for
/// it: the sender's stream slows to the disk's pace (TCP pushes back on the client) instead of the queue growing
/// without end.
public static class WriteBackPressure
{
    public const int MaxPending = 10_000;

    public static async ValueTask WaitIfBehindAsync(IStorage storage, Task write)
    {
        if (storage.PendingWrites <= MaxPending) return;
        try { await write; }
        catch (Exception) { } // reported by whoever queued it
    }
}
