namespace Xmpp.Server.Cluster;

/// Named locks that one node of the cluster holds at a time (issue 17), for work a per-node gate serializes on a
/// single node, such as handing an account's offline spool over. Absent on a single node: nothing resolves it unless
/// the cluster is configured.
public interface IClusterLocks
{
    /// Waits for the named lock, with bounded back-off, at most `wait`; the lock held, or null when it was not had in
    /// time (another node held it throughout, Redis did not answer) or `abandon` said the caller no longer wants it.
    ValueTask<IClusterLock?> AcquireAsync(string name, TimeSpan wait, Func<bool>? abandon = null);
}

/// One held cluster lock; disposing it releases it (only if it is still this holder's).
public interface IClusterLock : IAsyncDisposable
{
    /// True while the lock is certainly this holder's: renewed in time. Once false (a renewal failed or came too late,
    /// as after a pause longer than its time to live) another node may hold it, and the holder stops acting under it.
    bool Held { get; }
}
