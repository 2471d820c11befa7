using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Muc;
using Xmpp.Storage;

namespace Xmpp.Server.Cluster;

/// Room hosting in a cluster (issue 17, point 3). In Redis, per room:
///   xmpp:room:{room}        hash node, epoch: the node that hosts the room and the epoch it took it with
///   xmpp:room-epoch:{room}  the room's epoch counter (only increases)
///   xmpp:muc-live:{service} hash: the temporary public rooms, field the room's local part, value "{node} {token} {title}"
///                           of the registration hosting it (for disco#items on every node; persistent ones are in
///                           PostgreSQL)
///   xmpp:muc-hidden:{service} the same for the temporary rooms not listed publicly (for the admin room list only)
/// A node takes a room with one script that records it only when the recorded host is absent, this node itself (a
/// new incarnation, whose memory of the room is gone) or without a lease; then it records the epoch in PostgreSQL
/// (IRoomFence), where every write of the room's state checks it. The hot path is a local cache room → (node, epoch),
/// dropped for a node when it goes down and wholesale when this node loses its lease.
public sealed class ClusterRoomHosting : IRoomHosting
{
    // KEYS[1] the room's hash, KEYS[2] its epoch counter; ARGV[1] this node, ARGV[2] the lease key prefix, ARGV[3] the
    // lowest epoch to give (above what PostgreSQL holds, when Redis lost its counter), ARGV[4] this node's registration
    // token (the room is already this registration's: same epoch; an earlier registration's: a new one).
    private const string TakeScript = """
        local owner = redis.call('hget', KEYS[1], 'node')
        if owner and owner ~= ARGV[1] and redis.call('exists', ARGV[2] .. owner) == 1 then
          return {owner, redis.call('hget', KEYS[1], 'epoch')}
        end
        if owner == ARGV[1] and ARGV[4] ~= '' and redis.call('hget', KEYS[1], 'token') == ARGV[4] and tonumber(ARGV[3]) == 0 then
          return {owner, redis.call('hget', KEYS[1], 'epoch')}
        end
        local e = redis.call('incr', KEYS[2])
        if e < tonumber(ARGV[3]) then
          e = tonumber(ARGV[3])
          redis.call('set', KEYS[2], e)
        end
        redis.call('hset', KEYS[1], 'node', ARGV[1], 'epoch', e, 'token', ARGV[4])
        return {ARGV[1], tostring(e)}
        """;

    private readonly INodeBus _bus;
    private readonly IConnectionMultiplexer _redis;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, (string Node, long Epoch)> _hosts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _taking = new(StringComparer.Ordinal);

    public ClusterRoomHosting(INodeBus bus, IConnectionMultiplexer redis, IRoomFence fence, ILogger<ClusterRoomHosting> log)
    {
        _bus = bus;
        _redis = redis;
        Fence = fence;
        _log = log;
        bus.NodeDown += OnNodeDown;
        bus.LeaseLost += OnLeaseLost;
        bus.OnRequest(DestroyRequest, DestroyRequestedAsync);
    }

    private const string DestroyRequest = "muc-destroy";

    private readonly ConcurrentDictionary<string, Func<string, string?, ValueTask<bool>>> _destroyers = new(StringComparer.Ordinal);

    public async Task<bool?> DestroyOnHostAsync(string node, string room, string? reason)
    {
        var request = new Element("destroy", Ns.Cluster).SetAttr("room", room).SetAttr("reason", reason);
        var answer = await _bus.RequestAsync(node, DestroyRequest, request, TimeSpan.FromSeconds(10));
        return answer is null ? null : answer.Attr("done") == "1";
    }

    public void OnDestroyRequest(string domain, Func<string, string?, ValueTask<bool>> destroy) => _destroyers[domain] = destroy;

    // Run by the room's own service on this node, which hosts it again or takes it (the request may have raced a move).
    private async ValueTask<Element?> DestroyRequestedAsync(string from, Element request)
    {
        if (!Jid.TryParse(request.Attr("room"), out var room) || room!.Local is null
            || !_destroyers.TryGetValue(room.Domain, out var destroy)) return null;
        bool done = await destroy(room.ToString(), request.Attr("reason"));
        return new Element("destroyed", Ns.Cluster).SetAttr("done", done ? "1" : "0");
    }

    public IRoomFence Fence { get; }

    internal static string LiveRoomsKey(string domain) => "xmpp:muc-live:" + domain;

    internal static string HiddenRoomsKey(string domain) => "xmpp:muc-hidden:" + domain;

    // Withdraws a room's entry only while it is still the one this registration wrote (the room may have been made
    // again elsewhere since): KEYS[1] the service's hash, ARGV[1] the room, ARGV[2] "{node} {token} ".
    private const string WithdrawScript = """
        local v = redis.call('hget', KEYS[1], ARGV[1])
        if v and string.sub(v, 1, #ARGV[2]) == ARGV[2] then return redis.call('hdel', KEYS[1], ARGV[1]) end
        return 0
        """;

    private string Registration => $"{_bus.LocalNode} {(_bus as RedisNodeBus)?.Token ?? ""} ";

    public void ShareLiveRoom(string domain, string local, MucRoomSummary? summary)
    {
        // Fire and forget, in order on the one connection: the room's worker does not wait for Redis. A room is in one
        // of the two lists: public ones for everybody's disco#items, hidden ones (locked new rooms too) for the admin.
        var db = _redis.GetDatabase();
        var (into, other) = summary?.Public == true ? (LiveRoomsKey(domain), HiddenRoomsKey(domain)) : (HiddenRoomsKey(domain), LiveRoomsKey(domain));
        if (summary is not null) db.HashSet(into, local, Registration + summary.Title, flags: CommandFlags.FireAndForget);
        else db.ScriptEvaluate(WithdrawScript, [into], [local, Registration], CommandFlags.FireAndForget);
        db.ScriptEvaluate(WithdrawScript, [other], [local, Registration], CommandFlags.FireAndForget);
    }

    public async ValueTask<IReadOnlyList<LiveRoom>> LiveRoomsElsewhereAsync(string domain, bool hiddenToo = false)
    {
        var rooms = await ReadLiveRoomsAsync(LiveRoomsKey(domain), true);
        if (hiddenToo) rooms.AddRange(await ReadLiveRoomsAsync(HiddenRoomsKey(domain), false));
        return rooms;
    }

    private async ValueTask<List<LiveRoom>> ReadLiveRoomsAsync(string key, bool listed)
    {
        var db = _redis.GetDatabase();
        HashEntry[] entries;
        try { entries = await db.HashGetAllAsync(key); }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _log.LogWarning("Temporary rooms of other nodes not read from Redis: {Error}", e.Message);
            return [];
        }
        var bus = _bus as RedisNodeBus;
        var rooms = new List<LiveRoom>();
        foreach (var entry in entries)
        {
            var parts = ((string?)entry.Value ?? "").Split(' ', 3);
            if (parts.Length < 3) continue;
            var (node, token, title) = (parts[0], parts[1], parts[2]);
            if (node == _bus.LocalNode && token == bus?.Token) continue; // this node lists its own rooms from memory
            string? current = null;
            bool stale = bus?.IsDeadToken(token) == true || (node == _bus.LocalNode && token != bus?.Token)
                || (await _bus.IsAliveNowAsync(node) && bus?.AliveNodes.TryGetValue(node, out current) == true && current != token);
            if (stale)
            {
                // An ended registration's rooms ended with it.
                db.ScriptEvaluate(WithdrawScript, [key], [(string)entry.Name!, $"{node} {token} "], CommandFlags.FireAndForget);
                continue;
            }
            if (current == token) rooms.Add(new LiveRoom((string)entry.Name!, title, listed, node));
        }
        return rooms;
    }

    public event Action<string?>? RoomsLost;

    public event Action<string>? NodeDown;

    /// Rooms this node has taken since start (for tests and metrics).
    public long Taken => Interlocked.Read(ref _taken);

    private long _taken;

    internal static string RoomKey(string room) => "xmpp:room:" + room;

    internal static string EpochKey(string room) => "xmpp:room-epoch:" + room;

    public async ValueTask<RoomHost?> HostAsync(string room)
    {
        if (Cached(room) is { } known) return known;
        if (!_bus.HoldsLease) return null;
        // One lookup per room at a time on this node: the stanzas behind the first wait for its answer.
        var gate = _taking.GetOrAdd(room, _ => new SemaphoreSlim(1, 1));
        if (!await gate.WaitAsync(TimeSpan.FromSeconds(10))) return null;
        try
        {
            if (Cached(room) is { } again) return again;
            return await TakeAsync(room);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or Npgsql.NpgsqlException)
        {
            _log.LogWarning("Room {Room}: could not find or take its host: {Error}", room, e.Message);
            return null;
        }
        finally
        {
            gate.Release();
            if (gate.CurrentCount == 1) _taking.TryRemove(new KeyValuePair<string, SemaphoreSlim>(room, gate));
        }
    }

    private RoomHost? Cached(string room)
    {
        if (!_hosts.TryGetValue(room, out var h)) return null;
        if (h.Node == _bus.LocalNode) return _bus.HoldsLease ? new RoomHost(h.Node, h.Epoch, true, false) : null;
        if (_bus.IsAlive(h.Node)) return new RoomHost(h.Node, h.Epoch, false, false);
        _hosts.TryRemove(new KeyValuePair<string, (string, long)>(room, h));
        return null;
    }

    private async ValueTask<RoomHost?> TakeAsync(string room)
    {
        var db = _redis.GetDatabase();
        long floor = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var result = (RedisResult[])(await db.ScriptEvaluateAsync(TakeScript, [RoomKey(room), EpochKey(room)],
                [_bus.LocalNode, RedisNodeBus.LeaseKey(""), floor, (_bus as RedisNodeBus)?.Token ?? ""]))!;
            var node = (string)result[0]!;
            var epoch = long.Parse((string)result[1]!, CultureInfo.InvariantCulture);
            if (node != _bus.LocalNode)
            {
                // A host not seen here yet (it came up since the last membership check) is looked up at once.
                if (!await _bus.IsAliveNowAsync(node)) return null;
                _hosts[room] = (node, epoch);
                return new RoomHost(node, epoch, false, false);
            }
            // Recorded in Redis; now in PostgreSQL, where the writes check it. A lower epoch than PostgreSQL holds means
            // Redis lost its counter (restarted without its data): take it again above the recorded one.
            var recorded = await Fence.ClaimAsync(room, epoch);
            if (recorded != epoch)
            {
                floor = recorded + 1;
                continue;
            }
            if (!_bus.HoldsLease) return null;
            _hosts[room] = (node, epoch);
            Interlocked.Increment(ref _taken);
            _log.LogInformation("Room {Room}: hosted on this node from now on (epoch {Epoch})", room, epoch);
            return new RoomHost(node, epoch, true, true);
        }
        return null;
    }

    public long? EpochOf(string room) =>
        _bus.HoldsLease && _hosts.TryGetValue(room, out var h) && h.Node == _bus.LocalNode ? h.Epoch : null;

    public void Forward(string node, Element stanza) => _bus.Route(node, stanza);

    public void Forget(string room)
    {
        if (_hosts.TryRemove(room, out var h) && h.Node == _bus.LocalNode) RoomsLost?.Invoke(room);
    }

    private void OnNodeDown(string node)
    {
        foreach (var (room, h) in _hosts)
            if (h.Node == node) _hosts.TryRemove(new KeyValuePair<string, (string, long)>(room, h));
        NodeDown?.Invoke(node);
    }

    // Every room this node hosted may have been taken by another node meanwhile: forget them all; the rooms leave memory.
    private void OnLeaseLost()
    {
        _hosts.Clear();
        RoomsLost?.Invoke(null);
    }
}
