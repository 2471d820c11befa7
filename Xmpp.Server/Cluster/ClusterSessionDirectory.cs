using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster;

/// The session directory of a cluster node: the in-process directory's logic over this node's sessions and a replica
/// of every other node's, so Get(bare) returns local and remote resources together and no module can tell them apart.
/// Each local bind, update and unbind is written to this node's hash (xmpp:sessions:{node}, which a node starting or
/// registering again loads) and published on xmpp:dir (node, its registration token, op, full JID, flags, presence).
/// While this node holds no valid lease it shows nobody online: nothing is delivered on a lease it lost.
public sealed partial class ClusterSessionDirectory : ISessionDirectory
{
    internal static readonly RedisChannel EventsChannel = RedisChannel.Literal("xmpp:dir");

    private readonly SessionDirectory _all = new();
    private readonly RedisNodeBus _bus;
    private readonly IConnectionMultiplexer _redis;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<ISessionSink, long> _boundAt = new(ReferenceEqualityComparer.Instance);
    // Sessions that were bound when this node lost its lease: closing, and never delivered to again, even once the
    // node has registered anew (a stopped process may read frames queued for it only after that).
    private readonly ConcurrentDictionary<ISessionSink, byte> _fenced = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<string, Replica> _replicas = new(StringComparer.Ordinal);
    private readonly Channel<Change> _changes = Channel.CreateUnbounded<Change>(new UnboundedChannelOptions { SingleReader = true });
    private readonly XmppStreamParser _parser = new(ClusterXml.Limits);
    private int _localCount;

    private sealed class Replica
    {
        public string? Token;
        public readonly Dictionary<string, RemoteSessionSink> Sinks = new(StringComparer.Ordinal);
    }

    // One local change as written to Redis: the hash field (null value deletes it) and the event.
    private readonly record struct Change(string Field, byte[]? Record, byte[] Event);

    public ClusterSessionDirectory(RedisNodeBus bus, IConnectionMultiplexer redis, ILogger<ClusterSessionDirectory> log)
    {
        _bus = bus;
        _redis = redis;
        _log = log;
        bus.Registered += PublishAllAsync;
        bus.Restored += PublishAllAsync;
        bus.NodeUp += LoadNodeAsync;
        bus.LeaseLost += OnLeaseLost;
        bus.NodeDownCleanup += async (node, token, cleaner) =>
        {
            var entries = DropNode(node, token);
            if (cleaner && SessionsLost is { } announce) await announce(entries);
        };
        bus.OnRequest(RemoteSessionSink.CloseRequest, CloseRequestedAsync);
        _ = Task.Run(WriteLoopAsync);
    }

    /// Called on the one survivor that cleans up after a dead node, with the sessions it had.
    public Func<IReadOnlyList<SessionEntry>, ValueTask>? SessionsLost { get; set; }

    /// This node's bound sessions.
    public int Count => Volatile.Read(ref _localCount);

    /// Sessions on other nodes known to this one.
    public int RemoteCount => _replicas.Values.Sum(r => { lock (r) return r.Sinks.Count; });

    public ResourceSet Get(Jid bare)
    {
        if (!_bus.HoldsLease) return ResourceSet.Empty;
        var set = _all.Get(bare);
        if (_fenced.IsEmpty) return set;
        foreach (var e in set.Entries)
            if (_fenced.ContainsKey(e.Sink)) set = set.Without(e.Sink);
        return set;
    }

    public SessionEntry? Find(Jid full) =>
        _bus.HoldsLease && _all.Find(full) is { } e && (_fenced.IsEmpty || !_fenced.ContainsKey(e.Sink)) ? e : null;

    /// The session bound to a full JID on this node, if it is still one to deliver to.
    internal SessionEntry? FindLocal(Jid full) =>
        _all.Find(full) is { Sink: not RemoteSessionSink } e && !_fenced.ContainsKey(e.Sink) ? e : null;

    public IEnumerable<SessionEntry> All() => _all.All();

    public SessionEntry? Bind(SessionEntry entry)
    {
        var previous = _all.Bind(entry);
        _boundAt[entry.Sink] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (previous is null or { Sink: RemoteSessionSink }) Interlocked.Increment(ref _localCount);
        Publish("b", entry);
        return previous;
    }

    public SessionEntry? Update(ISessionSink sink, Func<SessionEntry, SessionEntry> change)
    {
        var before = _all.Find(sink.Jid);
        var updated = _all.Update(sink, change);
        if (updated is not null && sink is not RemoteSessionSink && !ReferenceEquals(before, updated)) Publish("u", updated);
        return updated;
    }

    public SessionEntry? Unbind(ISessionSink sink)
    {
        var removed = _all.Unbind(sink);
        _boundAt.TryRemove(sink, out _);
        _fenced.TryRemove(sink, out _);
        if (removed is null || sink is RemoteSessionSink) return removed;
        Interlocked.Decrement(ref _localCount);
        Publish("x", removed);
        return removed;
    }

    // ---- Publishing this node's changes ----

    private void Publish(string op, SessionEntry entry)
    {
        if (entry.Sink is RemoteSessionSink) return;
        var field = entry.Jid.ToString();
        var record = op == "x" ? null : Encode("b", entry);
        _changes.Writer.TryWrite(new Change(field, record, op == "b" && record is not null ? record : Encode(op, entry)));
    }

    private byte[] Encode(string op, SessionEntry e)
    {
        var w = new ArrayBufferWriter<byte>(256);
        _boundAt.TryGetValue(e.Sink, out var boundAt);
        ClusterXml.Write(w, "e", [
            ("op", op), ("n", _bus.LocalNode), ("i", _bus.Token), ("j", e.Jid.ToString()),
            ("t", boundAt.ToString(CultureInfo.InvariantCulture)),
            ("a", e.Available ? "1" : null), ("p", e.Priority == 0 ? null : e.Priority.ToString(CultureInfo.InvariantCulture)),
            ("r", e.RosterRequested ? "1" : null), ("c", e.Carbons ? "1" : null), ("s", e.CsiInactive ? "1" : null),
            ("bl", e.BlocklistRequested ? "1" : null), ("u", e.UserAgentId),
        ], op == "x" ? null : e.Presence);
        return w.WrittenSpan.ToArray();
    }

    // One writer: the hash and the events change in the order the sessions did; events gathered meanwhile go out as
    // one publish. Nothing is written while the lease is not held (the records would outlive a node declared dead).
    private async Task WriteLoopAsync()
    {
        var reader = _changes.Reader;
        var batch = new ArrayBufferWriter<byte>(16 * 1024);
        var pending = new List<Task>();
        while (await reader.WaitToReadAsync())
        {
            batch.ResetWrittenCount();
            pending.Clear();
            var db = _redis.GetDatabase();
            var key = RedisNodeBus.SessionsKey(_bus.LocalNode);
            while (batch.WrittenCount < 256 * 1024 && reader.TryRead(out var change))
            {
                if (!_bus.HoldsLease) continue;
                pending.Add(change.Record is { } record ? db.HashSetAsync(key, change.Field, record) : db.HashDeleteAsync(key, change.Field));
                batch.Write(change.Event);
            }
            if (batch.WrittenCount == 0) continue;
            pending.Add(_redis.GetSubscriber().PublishAsync(EventsChannel, batch.WrittenSpan.ToArray()));
            try { await Task.WhenAll(pending); }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                _log.LogWarning("Session directory changes not written to Redis: {Error}", e.Message);
            }
        }
    }

    // After (re-)registering, and after Redis lost its data: every local session again, under the current token.
    private ValueTask PublishAllAsync()
    {
        foreach (var e in _all.All())
            if (e.Sink is not RemoteSessionSink && !_fenced.ContainsKey(e.Sink)) Publish("b", e);
        return ValueTask.CompletedTask;
    }
}
