using System.Collections.Concurrent;

namespace Xmpp.Server.Limits;

/// Token buckets by key (an account, an address, a room occupant), all with one rate and burst. Buckets that have
/// refilled are forgotten when the table grows, so an attacker cycling through keys costs memory only while its
/// buckets are in use. Node-local: a limit per node is still a limit, and the buckets are transient by nature.
public sealed class RateLimiter(double perSecond, double burst, TimeProvider? time = null)
{
    private const int PruneAbove = 4096;
    private readonly ConcurrentDictionary<string, Box> _buckets = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private long _pruneAt = PruneAbove;

    private sealed class Box
    {
        public TokenBucket Bucket;
    }

    public double PerSecond => perSecond;
    public double Burst => burst;

    /// Counts one event for the key; false when the key is over its rate (the event is then not counted).
    public bool TryTake(string key, double cost = 1)
    {
        if (perSecond <= 0) return true; // a rate of 0 turns the limit off
        long now = (long)(_time.GetTimestamp() * (1000.0 / _time.TimestampFrequency));
        var box = _buckets.GetOrAdd(key, static _ => new Box());
        bool taken;
        lock (box) taken = box.Bucket.TryTake(perSecond, burst, now, cost);
        if (_buckets.Count > Interlocked.Read(ref _pruneAt)) Prune(now);
        return taken;
    }

    public int Count => _buckets.Count;

    private void Prune(long now)
    {
        foreach (var (key, box) in _buckets)
        {
            bool full;
            lock (box) full = box.Bucket.IsFull(perSecond, burst, now);
            if (full) _buckets.TryRemove(new KeyValuePair<string, Box>(key, box));
        }
        // Keys still busy after the sweep raise the threshold, so a large active population is not rescanned per event.
        Interlocked.Exchange(ref _pruneAt, Math.Max(PruneAbove, _buckets.Count * 2L));
    }
}
