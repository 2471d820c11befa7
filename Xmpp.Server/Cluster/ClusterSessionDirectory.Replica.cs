using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster;

// The replica of the other nodes' sessions: filled from their hashes when a node is first seen, kept current by
// their events, dropped when the node is down (or registered again under a new token).
public sealed partial class ClusterSessionDirectory
{
    // Fault injection for tests (XMPP_CLUSTER_EVENT_DELAY_MS): this node applies each batch of events that much after it
    // arrived, in order, as a node whose replica lags under load would; Redis replies are not delayed.
    private static readonly TimeSpan EventDelay = TimeSpan.FromMilliseconds(
        int.TryParse(Environment.GetEnvironmentVariable("XMPP_CLUSTER_EVENT_DELAY_MS"), CultureInfo.InvariantCulture, out var ms) ? ms : 0);

    /// Reads the xmpp:dir events until cancelled; one reader, so each node's events apply in the order it published them.
    internal async Task ReadEventsAsync(CancellationToken ct)
    {
        var queue = await _redis.GetSubscriber().SubscribeAsync(EventsChannel);
        var late = EventDelay > TimeSpan.Zero ? Channel.CreateUnbounded<(long Arrived, byte[] Batch)>() : null;
        var delayed = late is null ? Task.CompletedTask : Task.Run(async () =>
        {
            await foreach (var (arrived, batch) in late.Reader.ReadAllAsync(CancellationToken.None))
            {
                var wait = EventDelay - Stopwatch.GetElapsedTime(arrived);
                if (wait > TimeSpan.Zero) await Task.Delay(wait, CancellationToken.None);
                ApplyBatch(batch);
            }
        }, CancellationToken.None);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                ChannelMessage message;
                try { message = await queue.ReadAsync(ct); }
                catch (OperationCanceledException) { return; }
                catch (System.Threading.Channels.ChannelClosedException) { return; }
                if (late is not null) late.Writer.TryWrite((Stopwatch.GetTimestamp(), (byte[])message.Message!));
                else ApplyBatch((byte[])message.Message!);
            }
        }
        finally
        {
            late?.Writer.TryComplete();
            try { await queue.UnsubscribeAsync(); }
            catch (Exception e) when (e is RedisException or TimeoutException) { }
        }
    }

    private void ApplyBatch(ReadOnlyMemory<byte> batch)
    {
        List<Element> events;
        try { events = ClusterXml.ReadAll(_parser, batch); }
        catch (XmppStreamException e)
        {
            _log.LogError("Session directory event batch refused: {Condition} {Text}", e.Condition, e.Text);
            return;
        }
        foreach (var e in events)
        {
            try { Apply(e, expectedToken: null, announce: true); }
            catch (Exception ex) when (ex is FormatException or JidFormatException) { _log.LogWarning("Session directory event refused: {Error}", ex.Message); }
        }
    }

    /// Applies one record or event of another node. expectedToken: a record read from Redis (a node's hash, an
    /// account's index), only for that registration of its node. Records carry a version (v) that grows with each
    /// change the node writes: a record read from Redis is skipped when the node's events have already reached it
    /// (the events may say the session ended since), and an event older than a record read earlier is skipped.
    private void Apply(Element e, string? expectedToken, bool announce)
    {
        if (e.Name != "e" || e.Namespace != Ns.Cluster) return;
        var node = e.Attr("n");
        var token = e.Attr("i");
        var op = e.Attr("op");
        if (node is null || token is null || node == _bus.LocalNode || !Jid.TryParse(e.Attr("j"), out var jid) || jid!.Resource is null) return;
        if (expectedToken is not null && token != expectedToken) return;
        if (_bus.IsDeadToken(token)) return;
        // A node's events can arrive before the membership check has seen it: look it up now, so it is delivered to.
        if (expectedToken is null) _bus.Notice(node);
        long version = long.TryParse(e.Attr("v"), CultureInfo.InvariantCulture, out var v) ? v : 0;
        bool stored = expectedToken is not null;
        var replica = _replicas.GetOrAdd(node, _ => new Replica());
        SessionEntry? olderLocal = null, becameAvailable = null;
        lock (replica)
        {
            if (replica.Token != token)
            {
                // A new registration of that node: what the old one had is gone.
                if (replica.Token is not null) DropLocked(replica);
                replica.Token = token;
                replica.Applied = 0;
            }
            if (stored && version <= replica.Applied) return;
            if (!stored && version > replica.Applied) replica.Applied = version;
            var key = jid.ToString();
            replica.Sinks.TryGetValue(key, out var sink);
            if (sink is not null && (stored ? version <= sink.Version : version < sink.Version)) return;
            if (op == "x")
            {
                if (sink is not null && replica.Sinks.Remove(key)) _all.Unbind(sink);
                return;
            }
            if (sink is null)
            {
                if (op != "b") return;
                sink = new RemoteSessionSink(_bus, node, jid, token, _log);
                replica.Sinks[key] = sink;
            }
            sink.Version = version;
            var entry = new SessionEntry(jid, sink,
                Available: e.Attr("a") == "1",
                Priority: int.TryParse(e.Attr("p"), CultureInfo.InvariantCulture, out var p) ? p : 0,
                Presence: e.FirstElement,
                RosterRequested: e.Attr("r") == "1",
                Carbons: e.Attr("c") == "1",
                CsiInactive: e.Attr("s") == "1",
                BlocklistRequested: e.Attr("bl") == "1",
                UserAgentId: e.Attr("u"),
                Directed: e.Attr("dp") is { Length: > 0 } dp ? dp.Split(' ').Select(part => Uri.UnescapeDataString(part)).ToArray() : null);
            var current = _all.Find(jid);
            if (current is not null && current.Sink is not RemoteSessionSink && !ReferenceEquals(current.Sink, sink))
            {
                // RFC 6120 §7.7.2.2: the same full JID bound here and there; the older session ends.
                long remoteAt = long.TryParse(e.Attr("t"), CultureInfo.InvariantCulture, out var t) ? t : 0;
                long localAt = _boundAt.TryGetValue(current.Sink, out var l) ? l : long.MaxValue;
                if (localAt > remoteAt || (localAt == remoteAt && string.CompareOrdinal(_bus.LocalNode, node) > 0)) return;
                olderLocal = current;
            }
            bool wasAvailable = current is not null && ReferenceEquals(current.Sink, sink) && current.Available;
            if (current is not null && ReferenceEquals(current.Sink, sink)) _all.Update(sink, _ => entry);
            else _all.Bind(entry);
            if (announce && entry.Available && !wasAvailable) becameAvailable = entry;
        }
        if (becameAvailable is not null && RemoteAvailable is { } available)
        {
            try { available(becameAvailable); }
            catch (Exception ex) { _log.LogError(ex, "A remote-available handler failed"); }
        }
        if (olderLocal is not null)
        {
            // Its end unbinds a sink that is no longer the current entry (the remote one stays), so its record and
            // the others' replicas are told here.
            Interlocked.Decrement(ref _localCount);
            Publish("x", olderLocal);
            _boundAt.TryRemove(olderLocal.Sink, out _);
            olderLocal.Sink.Replace("Replaced by a new connection with the same resource");
        }
    }

    private void DropLocked(Replica replica)
    {
        foreach (var sink in replica.Sinks.Values) _all.Unbind(sink);
        replica.Sinks.Clear();
    }

    /// A node came up (or this node registered and sees it): its current sessions from its hash.
    private async ValueTask LoadNodeAsync(string node, string token)
    {
        HashEntry[] records;
        try { records = await _redis.GetDatabase().HashGetAllAsync(RedisNodeBus.SessionsKey(node)); }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _log.LogWarning("Sessions of node {Node} not loaded: {Error}", node, e.Message);
            return;
        }
        foreach (var record in records)
        {
            List<Element> parsed;
            try { parsed = ClusterXml.ReadAll(new XmppStreamParser(ClusterXml.Limits), (byte[])record.Value!); }
            catch (XmppStreamException) { continue; }
            foreach (var e in parsed)
            {
                try { Apply(e, token, announce: false); }
                catch (Exception ex) when (ex is FormatException or JidFormatException) { }
            }
        }
    }

    /// The account's sessions as Redis has them now (its index, written with each bind, change and unbind), merged
    /// into the replica, then the account's resources. Only records of a registration this node knows to be alive
    /// count; a node not seen yet (its first second) has its lease read first (RedisNodeBus.IsAliveNowAsync).
    public async ValueTask<ResourceSet> GetConfirmedAsync(Jid bare)
    {
        if (!_bus.HoldsLease) return ResourceSet.Empty;
        HashEntry[] records;
        try { records = await _redis.GetDatabase().HashGetAllAsync(AccountKey(bare)); }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _log.LogWarning("Sessions of {Account} not read from Redis: {Error}", bare, e.Message);
            return Get(bare);
        }
        Interlocked.Increment(ref _confirmations);
        int before = Get(bare).Count;
        var found = new List<Element>();
        foreach (var record in records)
        {
            try { found.AddRange(ClusterXml.ReadAll(new XmppStreamParser(ClusterXml.Limits), (byte[])record.Value!)); }
            catch (XmppStreamException) { }
        }
        foreach (var node in found.Select(e => e.Attr("n")).Distinct(StringComparer.Ordinal))
            if (node is not null && node != _bus.LocalNode && !_bus.IsAlive(node)) await _bus.IsAliveNowAsync(node);
        var alive = _bus.AliveNodes;
        foreach (var e in found)
        {
            if (e.Attr("n") is not { } node || !alive.TryGetValue(node, out var token) || e.Attr("i") != token) continue;
            try { Apply(e, token, announce: true); }
            catch (Exception ex) when (ex is FormatException or JidFormatException) { }
        }
        var set = Get(bare);
        if (set.Count > before)
        {
            Interlocked.Increment(ref _confirmedLate);
            _log.LogDebug("Sessions of {Account} found in Redis before their events arrived", bare);
        }
        return set;
    }

    private long _confirmations, _confirmedLate;

    /// Reads of the shared directory on an undeliverable path, and how many found a session the events had not yet brought.
    public (long Reads, long FoundLate) Confirmations => (Interlocked.Read(ref _confirmations), Interlocked.Read(ref _confirmedLate));

    /// The node's sessions as this node knew them, removed from the directory.
    internal IReadOnlyList<SessionEntry> DropNode(string node, string? token)
    {
        if (!_replicas.TryGetValue(node, out var replica)) return [];
        lock (replica)
        {
            if (token is not null && replica.Token is not null && replica.Token != token) return [];
            var entries = new List<SessionEntry>();
            foreach (var sink in replica.Sinks.Values)
                if (_all.Find(sink.Jid) is { } entry && ReferenceEquals(entry.Sink, sink)) entries.Add(entry);
            DropLocked(replica);
            replica.Token = null;
            return entries;
        }
    }

    // The lease is gone: every local session ends (its client reconnects, through the load balancer, to a node that
    // holds its lease) and nothing learnt under the old registration is kept.
    private void OnLeaseLost()
    {
        var local = _all.All().Where(e => e.Sink is not RemoteSessionSink).ToList();
        foreach (var e in local) _fenced[e.Sink] = 0;
        foreach (var e in local) e.Sink.Close(StreamErrors.SystemShutdown, "This cluster node lost its lease; connect again");
        foreach (var node in _replicas.Keys) DropNode(node, null);
    }

    // Another node ends a session bound here (a conflict on its full JID, an account removed, an administrator's
    // disconnect). The request names the incarnation it saw: this registration (i) and the version of the newest record
    // of it that node had (v). A session whose first record is newer than that bound the full JID after it and is left
    // alone; so is every session when the request names an earlier registration (those were closed when its lease was
    // lost). Every request is answered, so the asking node stops asking again.
    private ValueTask<Element?> CloseRequestedAsync(string from, Element request)
    {
        var answer = new Element("closed", Ns.Cluster);
        if (!Jid.TryParse(request.Attr("jid"), out var jid) || FindLocal(jid!) is not { } local)
        {
            _log.LogInformation("Node {Node} asked to end {Jid}: no such session here (it has ended)", from, request.Attr("jid"));
            return ValueTask.FromResult<Element?>(answer.SetAttr("none", "1"));
        }
        // A lease token is an identifier of a registration, shared with every node, not a secret.
        if (request.Attr("i") is { Length: > 0 } registration && registration != _bus.Token)
        {
            _log.LogInformation("Node {Node} asked to end {Jid} of an earlier registration of this node: left alone", from, jid);
            return ValueTask.FromResult<Element?>(answer.SetAttr("none", "1"));
        }
        if (long.TryParse(request.Attr("v"), NumberStyles.None, CultureInfo.InvariantCulture, out var seen)
            && (!_firstVersion.TryGetValue(local.Sink, out var first) || first > seen))
        {
            _log.LogInformation("Node {Node} asked to end {Jid} as of record {Version}; the session bound here now is newer: left alone", from, jid, seen);
            return ValueTask.FromResult<Element?>(answer.SetAttr("newer", "1"));
        }
        var condition = request.Attr("condition") ?? StreamErrors.Conflict;
        if (condition == StreamErrors.Conflict) local.Sink.Replace(request.Attr("text") ?? "Replaced by a new connection with the same resource");
        else local.Sink.Close(condition, request.Attr("text"));
        return ValueTask.FromResult<Element?>(answer);
    }
}
