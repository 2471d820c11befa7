using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Cluster;

// A node's first second: the membership check (WatchLoopAsync) sees a node that has just registered only on its next
// pass, but its sessions' records and its frames can reach this node before that. Whatever names a node not seen yet
// (a frame from it, a session record of it, a stanza for one of its sessions or rooms) reads its lease at once: one GET,
// shared by everything that asks about that node meanwhile. A live lease with a token not known to be dead makes it up
// (NodeUp, as the membership check would); stanzas for it wait for that answer, in order, then go out or, when it holds
// no lease, are routed again here as undeliverable.
public sealed partial class RedisNodeBus
{
    // How long a node found without a lease is not looked up again (the next membership check comes by then).
    private static readonly TimeSpan AbsentFor = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _membershipGate = new(1, 1);
    private readonly ConcurrentDictionary<string, Task<bool>> _checks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _absentUntil = new(StringComparer.Ordinal);
    // Stanzas for a node whose lease is being read, in the order they were queued; _heldNodes lets the common path
    // (a node already seen, nothing held) skip the lock.
    private readonly Dictionary<string, List<(string Kind, string? Target, Element Stanza)>> _held = new(StringComparer.Ordinal);
    private volatile int _heldNodes;
    private long _leaseReads, _seenEarly;

    /// Leases read at once for a node not seen yet, and how many of those found it up before the membership check did.
    public (long Reads, long SeenEarly) FirstSeen => (Interlocked.Read(ref _leaseReads), Interlocked.Read(ref _seenEarly));

    public async ValueTask<bool> IsAliveNowAsync(string node)
    {
        if (IsAlive(node)) return true;
        if (node == LocalNode || node.Length == 0 || !HoldsLease || Absent(node)) return false;
        var mine = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var check = _checks.GetOrAdd(node, mine.Task);
        if (check != mine.Task) return await check;
        try { mine.TrySetResult(await ReadLeaseAsync(node)); }
        catch (Exception e)
        {
            _log.LogWarning("Cluster node {Node}: its lease could not be read: {Error}", node, e.Message);
            mine.TrySetResult(false);
        }
        finally { _checks.TryRemove(new KeyValuePair<string, Task<bool>>(node, mine.Task)); }
        return await mine.Task;
    }

    /// Something named a node (a frame from it, a record of one of its sessions): if it is not known yet, look it up
    /// now rather than at the next membership check.
    internal void Notice(string node)
    {
        if (node == LocalNode || IsAlive(node) || Absent(node)) return;
        _ = IsAliveNowAsync(node).AsTask();
    }

    private async Task<bool> ReadLeaseAsync(string node)
    {
        Interlocked.Increment(ref _leaseReads);
        RedisValue lease;
        try { lease = await _redis.GetDatabase().StringGetAsync(LeaseKey(node)); }
        catch (Exception e) when (e is RedisException or TimeoutException) { return IsAlive(node); }
        if (lease.IsNull || _deadTokens.ContainsKey(lease.ToString()))
        {
            if (!IsAlive(node)) MarkAbsent(node);
            return IsAlive(node);
        }
        // Bounded: a membership change in progress may itself be waiting for something that asks about this node.
        if (!await _membershipGate.WaitAsync(TimeSpan.FromSeconds(2))) return IsAlive(node);
        try
        {
            if (!HoldsLease) return false;
            if (!IsAlive(node)) Interlocked.Increment(ref _seenEarly);
            await SeenAsync(node, lease.ToString(), "its lease read at once");
        }
        finally { _membershipGate.Release(); }
        return IsAlive(node);
    }

    private bool Absent(string node) =>
        _absentUntil.TryGetValue(node, out var until) && Stopwatch.GetTimestamp() < until;

    private void MarkAbsent(string node) =>
        _absentUntil[node] = Stopwatch.GetTimestamp() + (long)(AbsentFor.TotalSeconds * Stopwatch.Frequency);

    // A deliver or route frame: straight out to a node already seen; held while the lease of one not seen yet is read.
    private bool Send(string node, string kind, string? target, Element stanza)
    {
        if (_heldNodes == 0 && (node == LocalNode || _alive.ContainsKey(node)))
        {
            EnqueueTracked(node, kind, target, stanza);
            return true;
        }
        lock (_held)
        {
            if (_held.TryGetValue(node, out var waiting))
            {
                waiting.Add((kind, target, stanza));
                return true;
            }
            if (node == LocalNode || _alive.ContainsKey(node))
            {
                EnqueueTracked(node, kind, target, stanza);
                return true;
            }
            // Known to hold no lease: a session of it is as good as gone (the caller routes the stanza on), and a room
            // stanza goes out as before (Redis drops it when nobody listens; the room's next stanza asks again).
            if (Absent(node) || !HoldsLease)
            {
                if (kind == "d") return false;
                EnqueueTracked(node, kind, target, stanza);
                return true;
            }
            _held[node] = [(kind, target, stanza)];
            _heldNodes = _held.Count;
        }
        _ = ReleaseHeldAsync(node);
        return true;
    }

    private async Task ReleaseHeldAsync(string node)
    {
        bool alive = await IsAliveNowAsync(node);
        List<(string Kind, string? Target, Element Stanza)>? held;
        lock (_held)
        {
            _held.Remove(node, out held);
            _heldNodes = _held.Count;
            // Under the lock: a stanza queued after these waits for the lock, then goes out behind them.
            if (alive && held is not null)
                foreach (var (kind, target, stanza) in held) EnqueueTracked(node, kind, target, stanza);
        }
        if (alive || held is null || held.Count == 0) return;
        _log.LogInformation("Cluster node {Node} holds no lease: {Count} stanzas for it routed again here", node, held.Count);
        if (UnhandledHandler is { } handler) await Guard(handler(node, held), "unhandled-frames");
    }
}
