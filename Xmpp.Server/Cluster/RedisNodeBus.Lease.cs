using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Xmpp.Server.Cluster;

// The node lease, the membership set and failure detection.
//   xmpp:lease:{node}   this node's random token, TTL LeaseSeconds, renewed every third of it with a compare-token script
//                       (after a failed attempt, again within 250 ms, until the lease ends)
//   xmpp:nodes          the member set, which the other nodes scan every second (MembershipCheckMilliseconds); a
//                       node named before that scan has seen it is looked up at once (RedisNodeBus.FirstSeen.cs)
//   xmpp:cleanup:{node}:{token}  SET NX lock: the one survivor that removes a dead incarnation's session records
public sealed partial class RedisNodeBus
{
    internal const string NodesKey = "xmpp:nodes";

    internal static string LeaseKey(string node) => "xmpp:lease:" + node;

    internal static string SessionsKey(string node) => "xmpp:sessions:" + node;

    // 1: renewed. 2: the key was missing (Redis lost its data: a restart without persistence) and is created again with
    // the same token, which the caller only trusts while its own clock says the lease is still valid. 0: another
    // token holds the key: the lease is lost.
    private const string RenewScript = """
        local v = redis.call('get', KEYS[1])
        if v == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
        if not v then
          redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
          redis.call('sadd', KEYS[2], ARGV[3])
          return 2
        end
        return 0
        """;

    // Removes a node's session hash (KEYS[2]) and its entries in the accounts' indexes (xmpp:account:{bare}, field
    // "{node} {full JID}", see ClusterSessionDirectory). The index keys are derived inside the script, which is fine
    // on the one Redis server the cluster uses (not on a Redis Cluster). One HDEL per session: a few ms per 10,000.
    private const string DropSessionsLua = """
        local function dropsessions(hash, node)
          for _, full in ipairs(redis.call('hkeys', hash)) do
            local slash = string.find(full, '/', 1, true)
            if slash then redis.call('hdel', 'xmpp:account:' .. string.sub(full, 1, slash - 1), node .. ' ' .. full) end
          end
          redis.call('del', hash)
        end
        """;

    // A new registration starts with no session records (KEYS[1] lease is unused here, KEYS[2] the node's hash).
    private const string ResetScript = DropSessionsLua + "\n" + """
        dropsessions(KEYS[2], ARGV[1])
        return 1
        """;

    // A dead node's records go only while its lease key is still absent (it may have registered again meanwhile).
    private const string CleanupScript = DropSessionsLua + "\n" + """
        if redis.call('exists', KEYS[1]) == 1 then return 0 end
        dropsessions(KEYS[2], ARGV[1])
        redis.call('srem', KEYS[3], ARGV[1])
        return 1
        """;

    private readonly ConcurrentDictionary<string, string> _alive = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _deadTokens = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _leaseGate = new(1, 1);
    private string _token = "";
    private long _renewedAt;
    private volatile bool _registered;
    private long _quietUntil;
    private long _suspendedUntil;

    /// The token of this node's current registration: it changes each time the node registers again.
    public string Token => _token;

    public bool HoldsLease => _registered && Stopwatch.GetElapsedTime(Volatile.Read(ref _renewedAt)) < _lease;

    public bool IsAlive(string node) => node == LocalNode ? HoldsLease : _alive.ContainsKey(node);

    /// A registration of another node that has ended: records and events that carry it are stale.
    public bool IsDeadToken(string token) => _deadTokens.ContainsKey(token);

    /// The other nodes currently holding a lease, with their tokens.
    public IReadOnlyDictionary<string, string> AliveNodes => _alive;

    /// Raised after this node registered (at start, and again after it lost its lease), before anything is routed
    /// through the new registration: the directory publishes its sessions there.
    public event Func<ValueTask>? Registered;

    /// Raised when Redis lost this node's lease key while the lease was still valid (Redis restarted without its data):
    /// the key is back with the same token and the directory must publish its sessions again.
    public event Func<ValueTask>? Restored;

    /// Raised when another node (or a new incarnation of it) is first seen with a lease.
    public event Func<string, string, ValueTask>? NodeUp;

    /// Raised with NodeDown: node, the token of the incarnation that ended, and whether this node won the cleanup lock
    /// (so it, and only it, tells the dead node's contacts and removes its records).
    public event Func<string, string, bool, ValueTask>? NodeDownCleanup;

    public event Action<string>? NodeDown;

    public event Action? LeaseLost;

    private async Task RegisterAsync()
    {
        var token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var db = _redis.GetDatabase();
        // A new registration starts with no session records: its sessions are published after Registered.
        await db.ScriptEvaluateAsync(ResetScript, [LeaseKey(LocalNode), SessionsKey(LocalNode)], [LocalNode]);
        // The lease runs from before the command that sets it (never later than Redis's own TTL).
        var sent = Stopwatch.GetTimestamp();
        await db.StringSetAsync(LeaseKey(LocalNode), token, _lease);
        await db.SetAddAsync(NodesKey, LocalNode);
        _token = token;
        Volatile.Write(ref _renewedAt, sent);
        _registered = true;
        _log.LogInformation("Cluster node {Node} registered (lease {Lease} s)", LocalNode, _lease.TotalSeconds);
        if (Registered is { } handlers)
            foreach (Func<ValueTask> h in handlers.GetInvocationList())
                await Guard(h(), "registered");
    }

    // After a renewal that failed (no answer within its bound, a broken connection) the next attempt comes this soon, not
    // a period later: one slow answer must not cost the lease. Attempts stop when the lease has ended (the fence).
    private TimeSpan RetryDelay => TimeSpan.FromMilliseconds(Math.Min(250, _lease.TotalMilliseconds / 12));

    private async Task RenewLoopAsync(CancellationToken ct)
    {
        var period = _lease / 3;
        var wait = period;
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(wait, ct); }
            catch (OperationCanceledException) { return; }
            await SuspendedForTest(ct);
            wait = await RenewAsync() ? period : RetryDelay;
        }
    }

    /// One renewal: first the fence (a pause longer than the lease, e.g. SIGSTOP then SIGCONT, is found here before
    /// the renewal goes out), then the compare-token script. Its answer is awaited for a third of the lease at most,
    /// and never past the lease's end, so a retry fits before it ends; the lease counts from before the command was
    /// sent, so a renewal Redis applies after this node stopped waiting only makes Redis's TTL outlast this node's
    /// clock. False when the attempt failed while the lease is still valid: the caller tries again soon.
    internal async Task<bool> RenewAsync()
    {
        await _leaseGate.WaitAsync();
        try
        {
            if (_stopping.IsCancellationRequested) return true;
            if (!_registered)
            {
                await TryRegisterAsync();
                return true;
            }
            var since = Stopwatch.GetElapsedTime(Volatile.Read(ref _renewedAt));
            if (since >= _lease)
            {
                await LoseAsync($"no renewal for {since.TotalSeconds:0.0} s");
                return true;
            }
            var left = _lease - since;
            var bound = left < _lease / 3 ? left : _lease / 3;
            var sent = Stopwatch.GetTimestamp();
            long result;
            var renewal = _redis.GetDatabase().ScriptEvaluateAsync(RenewScript,
                [LeaseKey(LocalNode), NodesKey], [_token, (long)_lease.TotalMilliseconds, LocalNode]);
            try { result = (long)await renewal.WaitAsync(bound); }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Its own failure, if it comes after this wait, is observed here and not reported again.
                _ = renewal.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
                _log.LogWarning("Cluster lease renewal failed: {Error}", e is TimeoutException && !renewal.IsCompleted
                    ? $"no answer within {bound.TotalMilliseconds:0} ms" : e.Message);
                return false;
            }
            // The fence again: an answer that comes after the lease ended (the process was paused meanwhile) does not
            // revive it, since Redis may have let the key expire and the other nodes may have acted on that.
            if (Stopwatch.GetElapsedTime(Volatile.Read(ref _renewedAt)) >= _lease)
            {
                await LoseAsync("the renewal was answered after the lease had ended");
                return true;
            }
            if (result == 0)
            {
                await LoseAsync("another registration holds this node's lease key");
                return true;
            }
            Volatile.Write(ref _renewedAt, sent);
            if (result == 2)
            {
                _log.LogWarning("Cluster node {Node}: Redis had lost this node's lease (restarted?); registered again", LocalNode);
                Interlocked.Exchange(ref _quietUntil, Stopwatch.GetTimestamp() + Stopwatch.Frequency * (long)_lease.TotalSeconds);
                if (Restored is { } handlers)
                    foreach (Func<ValueTask> h in handlers.GetInvocationList())
                        await Guard(h(), "restored");
            }
            return true;
        }
        finally { _leaseGate.Release(); }
    }

    private async Task TryRegisterAsync()
    {
        try { await RegisterAsync(); }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _log.LogWarning("Cluster node {Node} could not register yet: {Error}", LocalNode, e.Message);
        }
    }

    private async Task LoseAsync(string reason)
    {
        _registered = false;
        _log.LogError("Cluster node {Node} lost its lease ({Reason}): closing its sessions and registering again", LocalNode, reason);
        try { LeaseLost?.Invoke(); }
        catch (Exception e) { _log.LogError(e, "A lease-lost handler failed"); }
        DropRemoteState();
        await TryRegisterAsync();
    }

    // Everything known about other nodes is from the old registration: forget it and learn it again.
    private void DropRemoteState()
    {
        foreach (var node in _alive.Keys) DropOutbox(node);
        _alive.Clear();
        ForgetReceived(null, null);
        FailPendingRequests(null);
    }

    private async Task WatchLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(_membershipPeriod, ct); }
            catch (OperationCanceledException) { return; }
            await SuspendedForTest(ct);
            if (!HoldsLease) continue;
            ProbeStale();
            try { await WatchOnceAsync(); }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                _log.LogDebug("Cluster membership check failed: {Error}", e.Message);
            }
        }
    }

    /// Reads the member set and every member's lease token: a node whose key is gone (or holds a new token) ended.
    internal async Task WatchOnceAsync()
    {
        var db = _redis.GetDatabase();
        var members = await db.SetMembersAsync(NodesKey);
        var others = members.Select(m => (string)m!).Where(m => m != LocalNode).ToList();
        foreach (var node in _alive.Keys)
            if (!others.Contains(node)) others.Add(node);
        // What this node knew before the reads: a node that a lease read at once (SeenAsync) changed meanwhile is left
        // to the next pass, so an older read here never declares a newer registration down.
        var known = others.Select(n => _alive.TryGetValue(n, out var t) ? t : null).ToArray();
        var own = db.StringGetAsync(LeaseKey(LocalNode));
        var tokens = await Task.WhenAll(others.Select(n => db.StringGetAsync(LeaseKey(n))));
        if ((string?)await own != _token)
        {
            // This node's own key is gone while its lease is valid: Redis lost its data (restarted without it), so the
            // other keys are missing for the same reason. Nobody is declared down; the renewal creates the key again.
            Interlocked.Exchange(ref _quietUntil, Stopwatch.GetTimestamp() + Stopwatch.Frequency * (long)_lease.TotalSeconds);
            _ = Task.Run(RenewAsync);
            return;
        }
        bool quiet = Stopwatch.GetTimestamp() < Interlocked.Read(ref _quietUntil);
        // One membership change at a time: this loop and a lease read at once for a node not seen yet (SeenAsync).
        await _membershipGate.WaitAsync();
        try
        {
            for (int i = 0; i < others.Count; i++)
            {
                var node = others[i];
                var token = (string?)tokens[i];
                _alive.TryGetValue(node, out var old);
                if (old != known[i]) continue;
                if (token is not null)
                {
                    await SeenAsync(node, token, "membership check");
                    continue;
                }
                // Just after Redis came back, the others have not registered again yet: give them one lease.
                if (quiet) continue;
                if (old is not null) await DownAsync(node, old);
                else await CleanupAsync(node, "unknown"); // a member that died before this node saw it
            }
        }
        finally { _membershipGate.Release(); }
    }

    /// A node's lease holds this token (read from Redis just now): a new registration is up (the one it replaces is
    /// down). Called with the membership gate held.
    private async Task SeenAsync(string node, string token, string how)
    {
        _alive.TryGetValue(node, out var old);
        if (old == token) return;
        if (old is not null) await DownAsync(node, old);
        if (_deadTokens.ContainsKey(token)) return;
        _absentUntil.TryRemove(node, out _);
        _alive[node] = token;
        _log.LogInformation("Cluster node {Node} is up ({How})", node, how);
        if (NodeUp is { } handlers)
            foreach (Func<string, string, ValueTask> h in handlers.GetInvocationList())
                await Guard(h(node, token), "node-up");
    }

    private async Task DownAsync(string node, string token)
    {
        // Not looked up again at once meanwhile: its sessions are about to leave the directory.
        MarkAbsent(node);
        if (!_alive.TryRemove(new KeyValuePair<string, string>(node, token))) return;
        _deadTokens[token] = 0;
        ForgetReceived(node, token);
        var unacked = DropOutbox(node, gone: true);
        FailPendingRequests(node);
        bool cleaner = await CleanupAsync(node, token);
        _log.LogWarning("Cluster node {Node} is down{Cleaner}", node, cleaner ? "; this node removes its sessions" : "");
        try { NodeDown?.Invoke(node); }
        catch (Exception e) { _log.LogError(e, "A node-down handler failed"); }
        if (NodeDownCleanup is { } handlers)
            foreach (Func<string, string, bool, ValueTask> h in handlers.GetInvocationList())
                await Guard(h(node, token, cleaner), "node-down");
        // After the handlers: the directory no longer lists the node's sessions, so a message goes to the spool.
        await RerouteAsync(node, unacked);
    }

    private async Task<bool> CleanupAsync(string node, string token)
    {
        var db = _redis.GetDatabase();
        if (!await db.StringSetAsync($"xmpp:cleanup:{node}:{token}", LocalNode, TimeSpan.FromSeconds(60), When.NotExists)) return false;
        var done = (long)await db.ScriptEvaluateAsync(CleanupScript, [LeaseKey(node), SessionsKey(node), NodesKey], [node]);
        return done == 1;
    }

    private async Task Guard(ValueTask task, string what)
    {
        try { await task; }
        catch (Exception e) { _log.LogError(e, "A cluster {What} handler failed", what); }
    }

    /// Tests: the node stops renewing and watching for a while, as a frozen process would (its Redis connection and
    /// subscriptions stay open, as a SIGSTOPped process's sockets do).
    internal void SuspendForTest(TimeSpan duration) =>
        Interlocked.Exchange(ref _suspendedUntil, Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency));

    private async Task SuspendedForTest(CancellationToken ct)
    {
        long until = Interlocked.Read(ref _suspendedUntil);
        var left = until == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), until);
        if (left <= TimeSpan.Zero) return;
        try { await Task.Delay(left, ct); }
        catch (OperationCanceledException) { }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive) return;
        _log.LogInformation("Cluster node {Node}: connection to Redis restored", LocalNode);
        Interlocked.Exchange(ref _quietUntil, Stopwatch.GetTimestamp() + Stopwatch.Frequency * (long)_lease.TotalSeconds);
        // Renew at once: it finds a lease key Redis lost and creates it again (Restored), or the lease valid.
        _ = Task.Run(RenewAsync);
    }
}
