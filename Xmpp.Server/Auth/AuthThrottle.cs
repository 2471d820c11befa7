using System.Collections.Concurrent;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Auth;

/// Slows down password guessing per IP address and per account. The first few failures in a window cost nothing,
/// so a user who mistypes is never locked out; after that each attempt must wait a doubling back-off.
public sealed class AuthThrottle(XmppServerOptionsAccessor options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed class Entry
    {
        public int Failures;
        public DateTimeOffset LastFailure;
    }

    public static string IpKey(string ip) => "ip:" + ip;
    public static string UserKey(string user) => "user:" + user;

    /// How long the caller must still wait before an attempt under this key is considered, or null when it may proceed.
    public TimeSpan? RetryAfter(string key)
    {
        if (!_entries.TryGetValue(key, out var e)) return null;
        var o = options.Value.Auth;
        lock (e)
        {
            var now = time.GetUtcNow();
            if (now - e.LastFailure > TimeSpan.FromSeconds(o.FailureWindowSeconds)) return null;
            if (e.Failures < o.FreeFailures) return null;
            var delay = TimeSpan.FromSeconds(Math.Min(o.MaxBackoffSeconds, o.BackoffSeconds * Math.Pow(2, e.Failures - o.FreeFailures)));
            var wait = e.LastFailure + delay - now;
            return wait > TimeSpan.Zero ? wait : null;
        }
    }

    public void RecordFailure(string key)
    {
        var e = _entries.GetOrAdd(key, static _ => new Entry());
        var window = TimeSpan.FromSeconds(options.Value.Auth.FailureWindowSeconds);
        lock (e)
        {
            var now = time.GetUtcNow();
            if (now - e.LastFailure > window) e.Failures = 0;
            e.Failures++;
            e.LastFailure = now;
        }
    }

    public void RecordSuccess(string key) => _entries.TryRemove(key, out _);

    /// Forgets entries whose window has passed; called periodically so the table cannot grow without bound.
    public void Prune()
    {
        var cutoff = time.GetUtcNow() - TimeSpan.FromSeconds(options.Value.Auth.FailureWindowSeconds + options.Value.Auth.MaxBackoffSeconds);
        foreach (var kv in _entries)
            if (kv.Value.LastFailure < cutoff) _entries.TryRemove(kv);
    }

    public int Count => _entries.Count;
}
