using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Muc;

/// One MUC service domain: answers for the service itself, and hands stanzas for room JIDs to the room, loading it
/// on demand. A room with nobody in it and nothing to do is unloaded; if it is not persistent, it is gone. In a cluster
/// (hosting given) a room lives on the one node that hosts it: stanzas for a room hosted elsewhere are forwarded there.
public sealed class MucService(string domain, IRouter router, MucStore store, MucOptions options, MamOptions mamOptions, ILogger<MucService> logger,
    Limits.RateLimitOptions? rates = null, Metrics.ServerMetrics? metrics = null, IRoomHosting? hosting = null)
{
    /// Counts refusals by the room limits (join and nickname floods) in xmppd_limits_refused_total.
    internal Metrics.ServerMetrics? Metrics { get; } = metrics;

    private static readonly Limits.RateLimitOptions DefaultRates = new();
    private readonly Dictionary<string, MucRoom> _rooms = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _indexGate = new(1, 1);
    private Dictionary<string, MucRoomSummary>? _directory;
    private string _secret = "";
    private readonly Dictionary<string, MucRoomSummary> _live = new(StringComparer.Ordinal);

    public string Domain { get; } = domain;
    internal IRouter Router => router;
    internal MucStore Store => store;
    internal MucOptions Options => options;
    internal MamOptions MamOptions => mamOptions;
    internal ILogger Logger => logger;

    /// Xmpp:RateLimits: room joins per real bare JID on this service, and nick changes per occupant (room and bare JID).
    internal Limits.RateLimiter JoinRate { get; } =
        new((rates ?? DefaultRates).MucJoinsPerMinute / 60, (rates ?? DefaultRates).MucJoinBurst);
    internal Limits.RateLimiter NickChangeRate { get; } =
        new((rates ?? DefaultRates).MucNickChangesPerMinute / 60, (rates ?? DefaultRates).MucNickChangeBurst);

    /// Rooms currently in memory.
    public int LoadedRooms { get { lock (_rooms) return _rooms.Count; } }

    /// Occupants of the rooms in memory, for metrics (each room's count read without its turn: a gauge, not a decision).
    public int Occupants { get { lock (_rooms) return _rooms.Values.Sum(r => r.OccupantCount); } }

    public const string Name = "Chatrooms";

    /// Stanzas for room and occupant JIDs (the router sends those for the service's own address to InfoAsync and
    /// ItemsAsync, or answers them itself).
    public async ValueTask HandleAsync(StanzaContext c)
    {
        var to = c.To!;
        await EnsureIndexAsync();
        if (hosting is not null && !await HostedHereAsync(c)) return;
        lock (_rooms)
        {
            if (!_rooms.TryGetValue(to.Local!, out var room))
            {
                room = new MucRoom(this, Jid.Create(to.Local, Domain));
                _rooms[to.Local!] = room;
            }
            room.Post(c);
        }
    }

    // ---- Cluster (issue 17, point 3) ----

    /// True when this node hosts the stanza's room; otherwise the stanza went to the host, or was answered with
    /// service-unavailable when no host can be found (this node has no lease, or Redis or PostgreSQL are gone).
    private async ValueTask<bool> HostedHereAsync(StanzaContext c)
    {
        var local = c.To!.Local!;
        var room = Jid.Create(local, Domain).ToString();
        if (await hosting!.HostAsync(room) is not { } host)
        {
            if (c.Type is not ("error" or "result")) await router.BounceAsync(c.Stanza, StanzaErrors.ServiceUnavailable);
            return false;
        }
        if (!host.Local)
        {
            hosting.Forward(host.Node, c.Stanza);
            return false;
        }
        // Taken over: the room may have been made (or made persistent) on another node since this one read its index.
        if (host.Claimed) await RefreshSummaryAsync(local);
        return true;
    }

    private async ValueTask RefreshSummaryAsync(string local)
    {
        var summary = await store.LoadSummaryAsync(Domain, local);
        lock (_directory!)
        {
            if (summary is not null) _directory[local] = summary;
            else _directory.Remove(local);
        }
    }

    /// This node no longer hosts the room (or any room, local null): it leaves memory without writing anything; its
    /// occupants' state is the new host's to rebuild (they rejoin after a failed XEP-0410 self-ping).
    internal void Evict(string? local)
    {
        lock (_rooms)
        {
            foreach (var room in _rooms.Values.Where(r => local is null || r.Jid.Local == local).ToList())
            {
                _rooms.Remove(room.Jid.Local!);
                room.Closed = true;
                // A temporary room lives only in its host's memory: it is gone from this node's list too.
                if (!room.Config.Persistent)
                    lock (_live) _live.Remove(room.Jid.Local!);
            }
        }
    }

    /// A room's write was refused by the fence: forget the room here and send what waits for it to the new host.
    internal void Fenced(MucRoom room, IEnumerable<StanzaContext> waiting)
    {
        logger.LogWarning("Room {Room}: another node hosts it now; this node's copy is dropped", room.Jid);
        lock (_rooms)
        {
            if (_rooms.TryGetValue(room.Jid.Local!, out var current) && ReferenceEquals(current, room)) _rooms.Remove(room.Jid.Local!);
            room.Closed = true;
        }
        hosting?.Forget(room.Jid.ToString());
        foreach (var c in waiting) _ = HandleAsync(c).AsTask();
    }

    /// Another node went down: every room here sends the unavailable presence of that node's occupants (their sessions
    /// are gone from the directory) to the others, as when an occupant's server goes away.
    internal void SweepOccupants(Func<Jid, bool> gone)
    {
        List<MucRoom> rooms;
        lock (_rooms) rooms = [.. _rooms.Values];
        foreach (var room in rooms) room.PostGoneSessions(gone);
    }

    /// Called by a room's worker when its inbox is empty: an empty room leaves memory (XEP-0045 §10.1.x: a temporary
    /// room is destroyed when the last occupant exits).
    internal bool TryUnload(MucRoom room)
    {
        lock (_rooms)
        {
            if (!room.CanUnload) return false;
            _rooms.Remove(room.Jid.Local!);
            room.Closed = true;
        }
        if (!room.Config.Persistent)
        {
            bool listed;
            lock (_live) listed = _live.Remove(room.Jid.Local!);
            if (listed) hosting?.ShareLiveRoom(Domain, room.Jid.Local!, null);
        }
        return true;
    }

    // ---- Directory of rooms (persistent ones in the stored index, temporary ones while they live) ----

    private async ValueTask EnsureIndexAsync()
    {
        if (Volatile.Read(ref _directory) is not null) return;
        await _indexGate.WaitAsync();
        try
        {
            if (_directory is not null) return;
            _secret = await store.SecretAsync(Domain);
            Volatile.Write(ref _directory, await store.LoadDirectoryAsync(Domain));
        }
        finally { _indexGate.Release(); }
    }

    // In a cluster other nodes make and change persistent rooms: the list is read from storage each time. Temporary
    // rooms are in memory on their host only; the host lists the public ones in Redis for the others (ItemsAsync).
    private async ValueTask ReloadIndexInClusterAsync()
    {
        if (hosting is null) return;
        var stored = await store.LoadDirectoryAsync(Domain);
        lock (_directory!)
        {
            _directory.Clear();
            foreach (var (local, summary) in stored) _directory[local] = summary;
        }
    }

    internal string Secret => _secret;

    internal bool IsPersistentRoom(string local)
    {
        lock (_directory!) return _directory.ContainsKey(local);
    }

    /// Records a room's summary after a change; persistent rooms keep theirs in storage, temporary ones in memory.
    internal async ValueTask UpdateSummaryAsync(string local, MucRoomSummary? summary)
    {
        bool persistentBefore, persistentNow = summary?.Persistent == true;
        lock (_directory!)
        {
            persistentBefore = _directory.ContainsKey(local);
            if (persistentNow) _directory[local] = summary!;
            else _directory.Remove(local);
        }
        bool wasLive;
        lock (_live)
        {
            wasLive = _live.ContainsKey(local);
            if (summary is null || persistentNow) _live.Remove(local);
            else _live[local] = summary;
        }
        // In a cluster the other nodes list this node's temporary rooms from Redis: the public ones in their disco#items,
        // every one in their admin room list.
        if (hosting is not null)
        {
            if (summary is { Persistent: false }) hosting.ShareLiveRoom(Domain, local, summary);
            else if (wasLive) hosting.ShareLiveRoom(Domain, local, null);
        }
        if (persistentNow) await store.SaveSummaryAsync(Domain, local, summary!);
        else if (persistentBefore) await store.DeleteSummaryAsync(Domain, local);
    }

    /// Rooms that list this bare JID as an owner, persistent or alive (for MucOptions.MaxRoomsPerUser).
    internal int RoomsOwnedBy(string bare)
    {
        int n = 0;
        lock (_directory!) n += _directory.Values.Count(s => s.Owners.Contains(bare));
        lock (_live) n += _live.Values.Count(s => s.Owners.Contains(bare));
        return n;
    }

    private List<(string Local, MucRoomSummary Summary)> PublicRooms()
    {
        var list = new List<(string, MucRoomSummary)>();
        lock (_directory!) list.AddRange(_directory.Where(r => r.Value.Public).Select(r => (r.Key, r.Value)));
        lock (_live) list.AddRange(_live.Where(r => r.Value.Public).Select(r => (r.Key, r.Value)));
        return list;
    }

    // ---- For the admin socket (xmppd room list, room destroy) ----

    /// Every room, persistent or alive, public or not, ordered by name; in a cluster the temporary rooms other nodes
    /// host too, with their host (Node; null for a room hosted here or only stored).
    internal async ValueTask<List<(string Local, MucRoomSummary Summary, string? Node)>> AllRoomsAsync()
    {
        await EnsureIndexAsync();
        await ReloadIndexInClusterAsync();
        var list = new List<(string Local, MucRoomSummary Summary, string? Node)>();
        lock (_directory!) list.AddRange(_directory.Select(r => (r.Key, r.Value, (string?)null)));
        lock (_live) list.AddRange(_live.Select(r => (r.Key, r.Value, (string?)null)));
        if (hosting is not null)
        {
            // The administrator sees every room of the cluster, hidden ones too (a hidden room is one nobody is told
            // about, not one the operator may not see), and which node hosts it: the node to look at for its logs.
            var listed = list.Select(r => r.Local).ToHashSet(StringComparer.Ordinal);
            foreach (var r in await hosting.LiveRoomsElsewhereAsync(Domain, hiddenToo: true))
                if (listed.Add(r.Local)) list.Add((r.Local, new MucRoomSummary { Title = r.Title, Public = r.Public }, r.Node));
        }
        list.Sort((a, b) => string.CompareOrdinal(a.Local, b.Local));
        return list;
    }

    /// Destroys a room on its own worker, loading it first if it is persistent and asleep; false when there is none.
    internal async ValueTask<bool> DestroyAsync(string local, string? reason)
    {
        await EnsureIndexAsync();
        if (hosting is not null)
        {
            // In a cluster the room lives on its host (issue 17): the destroy is done there, whichever node was asked.
            var room = Jid.Create(local, Domain).ToString();
            if (await hosting.HostAsync(room) is not { } host) return false;
            if (!host.Local) return await hosting.DestroyOnHostAsync(host.Node, room, reason) ?? false;
            if (host.Claimed) await RefreshSummaryAsync(local);
        }
        Task<bool> done;
        lock (_rooms)
        {
            if (!_rooms.TryGetValue(local, out var room))
            {
                // A temporary room lives only while loaded, so one that is not loaded does not exist.
                if (!IsPersistentRoom(local)) return false;
                room = new MucRoom(this, Jid.Create(local, Domain));
                _rooms[local] = room;
            }
            done = room.DestroyByAdminAsync(reason);
        }
        return await done;
    }

    // ---- The service's own address (XEP-0045 §6.1, §6.3) ----

    internal ValueTask InfoAsync(IqContext c)
    {
        if (!c.IsGet) c.Error(StanzaErrors.BadRequest);
        else if (c.Payload.Attr("node") is not null || !c.To.IsDomain) c.Error(StanzaErrors.ItemNotFound);
        else
        {
            var result = new Element("query", Ns.DiscoInfo)
                .Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "conference").SetAttr("type", "text").SetAttr("name", Name));
            foreach (var f in new[] { Ns.DiscoInfo, Ns.DiscoItems, Ns.Muc })
                result.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
            c.Result(result);
        }
        return ValueTask.CompletedTask;
    }

    /// §6.3: the public rooms, persistent or alive.
    internal async ValueTask ItemsAsync(IqContext c)
    {
        if (!c.IsGet) { c.Error(StanzaErrors.BadRequest); return; }
        if (c.Payload.Attr("node") is not null || !c.To.IsDomain) { c.Error(StanzaErrors.ItemNotFound); return; }
        await EnsureIndexAsync();
        await ReloadIndexInClusterAsync();
        var rooms = PublicRooms().Select(r => (r.Local, Name: r.Summary.Title.Length > 0 ? r.Summary.Title : r.Local)).ToList();
        // In a cluster, the temporary public rooms other nodes host as well (persistent ones came from storage).
        if (hosting is not null)
        {
            var listed = rooms.Select(r => r.Local).ToHashSet(StringComparer.Ordinal);
            foreach (var r in await hosting.LiveRoomsElsewhereAsync(Domain))
                if (listed.Add(r.Local)) rooms.Add((r.Local, r.Title.Length > 0 ? r.Title : r.Local));
        }
        var result = new Element("query", Ns.DiscoItems);
        foreach (var (local, name) in rooms.OrderBy(r => r.Local, StringComparer.Ordinal))
            result.Add(new Element("item", Ns.DiscoItems).SetAttr("jid", Jid.Create(local, Domain).ToString()).SetAttr("name", name));
        c.Result(result);
    }
}
