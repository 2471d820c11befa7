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
/// registering again loads) and the account's index (xmpp:account:{bare}, read on the undeliverable paths), and
/// published on xmpp:dir (node, its registration token, op, version, full JID, flags, presence), in one script.
/// While this node holds no valid lease it shows nobody online: nothing is delivered on a lease it lost.
public sealed partial class ClusterSessionDirectory : ISessionDirectory
{
    internal static readonly RedisChannel EventsChannel = RedisChannel.Literal("xmpp:dir");

    private readonly SessionDirectory _all = new();
    private readonly RedisNodeBus _bus;
    private readonly IConnectionMultiplexer _redis;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<ISessionSink, long> _boundAt = new(ReferenceEqualityComparer.Instance);
    // The version of the first record written of each local session: its incarnation, as a session-close names it.
    private readonly ConcurrentDictionary<ISessionSink, long> _firstVersion = new(ReferenceEqualityComparer.Instance);
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
        // The highest record version applied from that node's events (they arrive in version order).
        public long Applied;
        public readonly Dictionary<string, RemoteSessionSink> Sinks = new(StringComparer.Ordinal);
    }

    // One local change, encoded by the writer: op b (bind), u (update) or x (unbind); or r, a write of the session's
    // state as it is when the writer takes it (bound: b, else x), for a change whose write failed (Attempt: how often).
    private readonly record struct Change(string Op, SessionEntry Entry, long BoundAt, TaskCompletionSource? Done, int Attempt = 0);

    // A change whose write fails is written again (from the session's state then) at most this many times, each after
    // a short pause; a node that loses its lease meanwhile writes everything again when it registers anew.
    private const int WriteAttempts = 10;
    private static readonly TimeSpan WriteRetryDelay = TimeSpan.FromMilliseconds(250);

    // The last change queued per local session, done once Redis has it (PublishedAsync).
    private readonly ConcurrentDictionary<ISessionSink, Task> _written = new(ReferenceEqualityComparer.Instance);
    private long _version;

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

    public event Action<SessionEntry>? RemoteAvailable;

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
        _firstVersion.TryRemove(sink, out _);
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
        _boundAt.TryGetValue(entry.Sink, out var boundAt);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (op == "x") _written.TryRemove(entry.Sink, out _);
        else _written[entry.Sink] = done.Task;
        if (!_changes.Writer.TryWrite(new Change(op, entry, boundAt, done))) done.TrySetResult();
    }

    public ValueTask PublishedAsync(ISessionSink sink) =>
        _written.TryGetValue(sink, out var written) ? new ValueTask(written) : ValueTask.CompletedTask;

    internal static string AccountKey(Jid bare) => "xmpp:account:" + bare;

    private byte[] Encode(string op, SessionEntry e, long boundAt, long version)
    {
        var w = new ArrayBufferWriter<byte>(256);
        ClusterXml.Write(w, "e", [
            ("op", op), ("n", _bus.LocalNode), ("i", _bus.Token), ("j", e.Jid.ToString()),
            ("t", boundAt.ToString(CultureInfo.InvariantCulture)), ("v", version.ToString(CultureInfo.InvariantCulture)),
            ("a", e.Available ? "1" : null), ("p", e.Priority == 0 ? null : e.Priority.ToString(CultureInfo.InvariantCulture)),
            ("r", e.RosterRequested ? "1" : null), ("c", e.Carbons ? "1" : null), ("s", e.CsiInactive ? "1" : null),
            ("bl", e.BlocklistRequested ? "1" : null), ("u", e.UserAgentId),
            // RFC 6121 §4.6 recipients, each escaped so that a space separates them (a resource may hold spaces).
            ("dp", e.Directed is { Count: > 0 } d ? string.Join(' ', d.Select(jid => Uri.EscapeDataString(jid))) : null),
        ], op == "x" ? null : e.Presence);
        return w.WrittenSpan.ToArray();
    }

    // One batch of changes in one step: the node's hash, each account's index and the event publish together, and
    // only while the lease key still holds this registration's token (a node that lost its lease writes nothing).
    // KEYS: lease, node hash, then one account index per change. ARGV: token, node, channel, events, then per change
    // the full JID and its record ('' removes it).
    private const string WriteScript = """
        if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
        for i = 3, #KEYS do
          local full, record = ARGV[2 * i - 1], ARGV[2 * i]
          if record == '' then
            redis.call('hdel', KEYS[2], full)
            redis.call('hdel', KEYS[i], ARGV[2] .. ' ' .. full)
          else
            redis.call('hset', KEYS[2], full, record)
            redis.call('hset', KEYS[i], ARGV[2] .. ' ' .. full, record)
          end
        end
        return redis.call('publish', ARGV[3], ARGV[4])
        """;

    // One writer: the records and the events change in the order the sessions did, each numbered (v) so a node that
    // reads a record from Redis can tell whether its copy from the events is already newer; events gathered meanwhile
    // go out as one publish. The waiters of PublishedAsync are released once their batch is written (or has failed).
    // A batch whose write fails (the connection broke, Redis did not answer in time) may or may not have reached Redis;
    // each session it named is written again, as it is by then (r), behind whatever changed since: the same record
    // twice, or an unbind twice, changes nothing, and a stale state can never overwrite a newer one.
    private async Task WriteLoopAsync()
    {
        var reader = _changes.Reader;
        var batch = new ArrayBufferWriter<byte>(16 * 1024);
        var keys = new List<RedisKey>();
        var args = new List<RedisValue>();
        var done = new List<TaskCompletionSource>();
        var written = new List<Change>();
        var again = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.WaitToReadAsync())
        {
            batch.ResetWrittenCount();
            keys.Clear();
            args.Clear();
            done.Clear();
            written.Clear();
            keys.Add(RedisNodeBus.LeaseKey(_bus.LocalNode));
            keys.Add(RedisNodeBus.SessionsKey(_bus.LocalNode));
            args.Add(_bus.Token);
            args.Add(_bus.LocalNode);
            args.Add(EventsChannel.ToString());
            args.Add(RedisValue.EmptyString);
            while (batch.WrittenCount < 256 * 1024 && reader.TryRead(out var change))
            {
                if (change.Done is { } waiter) done.Add(waiter);
                if (change.Op == "r") again.Remove(change.Entry.Jid.ToString());
                if (!_bus.HoldsLease) continue;
                written.Add(change);
                var (op, entry, boundAt) = change.Op == "r" ? AsItIsNow(change.Entry) : (change.Op, change.Entry, change.BoundAt);
                long version = ++_version;
                if (op != "x" && _boundAt.ContainsKey(entry.Sink)) _firstVersion.TryAdd(entry.Sink, version);
                var record = op == "x" ? null : Encode("b", entry, boundAt, version);
                batch.Write(op == "b" ? record! : Encode(op, entry, boundAt, version));
                keys.Add(AccountKey(entry.Jid.Bare));
                args.Add(entry.Jid.ToString());
                args.Add(record ?? RedisValue.EmptyString);
            }
            if (batch.WrittenCount == 0)
            {
                foreach (var d in done) d.TrySetResult();
                continue;
            }
            args[3] = batch.WrittenSpan.ToArray();
            bool failed = false;
            try
            {
                var result = (long)await _redis.GetDatabase().ScriptEvaluateAsync(WriteScript, keys.ToArray(), args.ToArray());
                if (result < 0) _log.LogWarning("Session directory changes not written: Redis holds another lease token for this node");
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                failed = true;
                _log.LogWarning("Session directory changes not written to Redis ({Count}): {Error}; writing them again", written.Count, e.Message);
            }
            foreach (var d in done) d.TrySetResult();
            if (!failed) continue;
            await Task.Delay(WriteRetryDelay);
            foreach (var c in written)
            {
                if (c.Attempt + 1 >= WriteAttempts)
                {
                    _log.LogError("Session directory: {Jid} not written to Redis after {Attempts} attempts", c.Entry.Jid, WriteAttempts);
                    continue;
                }
                if (again.Add(c.Entry.Jid.ToString())) _changes.Writer.TryWrite(new Change("r", c.Entry, 0, null, c.Attempt + 1));
            }
        }
    }

    // The session bound to this full JID here now (b), or none (x: this node's record of the JID goes).
    private (string Op, SessionEntry Entry, long BoundAt) AsItIsNow(SessionEntry then) =>
        FindLocal(then.Jid) is { } now
            ? ("b", now, _boundAt.TryGetValue(now.Sink, out var boundAt) ? boundAt : 0)
            : ("x", then, 0);

    // After (re-)registering, and after Redis lost its data: every local session again, under the current token.
    private ValueTask PublishAllAsync()
    {
        foreach (var e in _all.All())
            if (e.Sink is not RemoteSessionSink && !_fenced.ContainsKey(e.Sink)) Publish("b", e);
        return ValueTask.CompletedTask;
    }
}
