using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Xmpp.Server.Cluster;

/// Cluster locks in Redis: `xmpp:lock:{name}` holds the holder's random token with a time to live, set only when
/// absent (SET NX PX), renewed every third of that time by a compare-token script while held, and released by a
/// compare-and-delete, so a holder never extends or removes another's lock. A node that dies (or freezes) holding a
/// lock blocks it for at most its time to live; the holder itself stops trusting the lock once its last successful
/// renewal was sent longer ago than that (Held), so it never acts on a lock that has expired under it.
public sealed class RedisClusterLocks(IConnectionMultiplexer redis, ILogger<RedisClusterLocks> log, TimeSpan timeToLive) : IClusterLocks
{
    /// How long a lock outlives its holder's last renewal, unless a test asks for another time.
    public static readonly TimeSpan DefaultTimeToLive = TimeSpan.FromSeconds(6);

    public RedisClusterLocks(IConnectionMultiplexer redis, ILogger<RedisClusterLocks> log) : this(redis, log, DefaultTimeToLive) { }

    public TimeSpan TimeToLive { get; } = timeToLive;

    private const string RenewScript = """
        if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
        return 0
        """;

    private const string ReleaseScript = """
        if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
        return 0
        """;

    internal static string Key(string name) => "xmpp:lock:" + name;

    /// Locks taken by this node since start (for tests and measurements).
    public long Acquired => Interlocked.Read(ref _acquired);

    /// Attempts that found the lock held by another holder.
    public long Contended => Interlocked.Read(ref _contended);

    private long _acquired, _contended;

    public async ValueTask<IClusterLock?> AcquireAsync(string name, TimeSpan wait, Func<bool>? abandon = null)
    {
        var db = redis.GetDatabase();
        var key = Key(name);
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var started = Stopwatch.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            long sent = Stopwatch.GetTimestamp();
            try
            {
                if (await db.StringSetAsync(key, token, TimeToLive, When.NotExists))
                {
                    Interlocked.Increment(ref _acquired);
                    return new HeldLock(this, db, key, token, sent);
                }
                Interlocked.Increment(ref _contended);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                log.LogWarning("Cluster lock {Name}: Redis did not answer: {Error}", name, e.Message);
            }
            if (abandon?.Invoke() == true) return null;
            var left = wait - Stopwatch.GetElapsedTime(started);
            if (left <= TimeSpan.Zero)
            {
                log.LogWarning("Cluster lock {Name}: not had within {Wait}", name, wait);
                return null;
            }
            // Bounded back-off: a short hand-over (one login's drain) is waited for in milliseconds, a long one costs
            // at most five reads a second.
            await Task.Delay(pause < left ? pause : left);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromMilliseconds(200).Ticks));
        }
    }

    private sealed class HeldLock : IClusterLock
    {
        private readonly RedisClusterLocks _owner;
        private readonly IDatabase _db;
        private readonly RedisKey _key;
        private readonly string _token;
        private readonly Timer _renewal;
        private long _validUntil;
        private volatile bool _lost;
        private int _released;

        public HeldLock(RedisClusterLocks owner, IDatabase db, RedisKey key, string token, long sentAt)
        {
            _owner = owner;
            _db = db;
            _key = key;
            _token = token;
            // Valid from when the SET was sent, not when its answer came: Redis may have started the clock earlier.
            _validUntil = sentAt + (long)(owner.TimeToLive.TotalSeconds * Stopwatch.Frequency);
            var every = owner.TimeToLive / 3;
            _renewal = new Timer(_ => _ = RenewAsync(), null, every, every);
        }

        public bool Held => !_lost && Stopwatch.GetTimestamp() < Volatile.Read(ref _validUntil);

        private async Task RenewAsync()
        {
            if (_lost || Volatile.Read(ref _released) != 0) return;
            long sent = Stopwatch.GetTimestamp();
            try
            {
                var ttl = _owner.TimeToLive;
                var renewed = (long)await _db.ScriptEvaluateAsync(RenewScript, [_key], [_token, (long)ttl.TotalMilliseconds]);
                if (renewed == 1) Volatile.Write(ref _validUntil, sent + (long)(ttl.TotalSeconds * Stopwatch.Frequency));
                else if (Volatile.Read(ref _released) == 0)
                {
                    _lost = true;
                    _owner.LogLost(_key, "another holder has it or it expired");
                }
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Not renewed this time; Held turns false by itself if no later renewal comes in time.
                _owner.LogLost(_key, "renewal failed: " + e.Message);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            await _renewal.DisposeAsync();
            try { await _db.ScriptEvaluateAsync(ReleaseScript, [_key], [_token]); }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Left to expire: it blocks the name for at most its time to live.
                _owner.LogLost(_key, "release failed: " + e.Message);
            }
        }
    }

    private void LogLost(RedisKey key, string why) => log.LogWarning("Cluster lock {Key}: {Why}", (string?)key, why);
}
