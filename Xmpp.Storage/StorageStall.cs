namespace Xmpp.Storage;

// Whether a store is holding writes it cannot make durable because the disk is full (ENOSPC, or a quota: EDQUOT).
// The store keeps those writes queued and retries them, so whatever waits for durability (a XEP-0198 <a/>, an IQ
// answer) waits rather than being told "stored"; the server meanwhile refuses new work that needs the disk with a
// wait-type error (RFC 6120 §8.3.3.18 resource-constraint) and logs one line when an outage begins and one when it ends.
public sealed class StorageStall
{
    private readonly Lock _gate = new();
    private readonly HashSet<string> _stalled = new(StringComparer.Ordinal);

    // Raised once per outage of a store (its name, the error), and once when it writes again.
    public event Action<string, Exception>? Began;

    public event Action<string>? Ended;

    // What a store repaired when it opened (a torn last record cut off), for the server's log.
    public event Action<string>? Repaired;

    public void Report(string note) => Repaired?.Invoke(note);

    public bool Active { get { lock (_gate) return _stalled.Count > 0; } }

    // errno values .NET puts in IOException.HResult on Unix when a write finds no space.
    private const int Enospc = 28, Edquot = 122;

    public static bool IsOutOfSpace(Exception ex) =>
        ex is IOException io && (io.HResult is Enospc or Edquot || (io.HResult & 0xFFFF) is 112 or 39); // Windows: ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL

    // The same, anywhere in an exception's chain: LiteDB rethrows the I/O error of its own writer thread wrapped, or as
    // the cause of the closed state it leaves itself in.
    public static bool IsOutOfSpaceAnywhere(Exception? ex)
    {
        for (var depth = 0; ex is not null && depth < 8; depth++, ex = ex.InnerException)
        {
            if (IsOutOfSpace(ex)) return true;
            if (ex is AggregateException { InnerExceptions: var inner } && inner.Any(IsOutOfSpaceAnywhere)) return true;
        }
        return false;
    }

    public void Begin(string store, Exception error)
    {
        bool first;
        lock (_gate) first = _stalled.Add(store);
        if (!first) return;
        StorageMetrics.Stalled(store, +1);
        Began?.Invoke(store, error);
    }

    public void End(string store)
    {
        bool was;
        lock (_gate) was = _stalled.Remove(store);
        if (!was) return;
        StorageMetrics.Stalled(store, -1);
        Ended?.Invoke(store);
    }
}
