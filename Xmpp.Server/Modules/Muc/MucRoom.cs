using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Precis;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

/// One room. Stanzas for it are queued and handled one at a time by a worker that exists only while there is work,
/// so the room's state needs no locks and everything it sends leaves in the order it was decided. What a stanza
/// causes is collected and routed after the handling, so a bounce coming back to the room only joins the queue.
internal sealed partial class MucRoom(MucService service, Jid jid)
{
    private readonly ConcurrentQueue<StanzaContext> _inbox = new();
    // Work from the server itself (the admin socket's room destroy), run by the same worker so it needs no locks either.
    private readonly ConcurrentQueue<Func<ValueTask>> _actions = new();
    private readonly List<Element> _outbox = [];
    private readonly List<MucOccupant> _occupants = [];
    private int _running;
    private bool _loaded;

    public Jid Jid { get; } = jid;
    public MucRoomConfig Config { get; private set; } = new();
    public Dictionary<string, MucAffiliation> Affiliations { get; private set; } = new(StringComparer.Ordinal);

    /// The room has been created (by a first join) or loaded from storage.
    public bool Exists { get; private set; }

    /// XEP-0045 §10.1.1: a new room stays locked until its owner configures it or accepts the defaults.
    public bool Locked { get; private set; }
    public string? Subject { get; private set; }
    public string? SubjectNick { get; private set; }
    public bool Closed { get; set; }

    public bool CanUnload => _inbox.IsEmpty && _actions.IsEmpty && _occupants.Count == 0;

    public int OccupantCount => _occupants.Count;

    private string RoomText => Jid.ToString();

    public void Post(StanzaContext c)
    {
        _inbox.Enqueue(c);
        if (Interlocked.Exchange(ref _running, 1) == 0) _ = Task.Run(RunAsync);
    }

    /// Runs an action on the room's worker, after the room is loaded, between two stanzas.
    public Task<T> Run<T>(Func<ValueTask<T>> action)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _actions.Enqueue(async () =>
        {
            try
            {
                if (!_loaded) await LoadAsync();
                done.SetResult(await action());
            }
            catch (Exception ex) { done.SetException(ex); }
        });
        if (Interlocked.Exchange(ref _running, 1) == 0) _ = Task.Run(RunAsync);
        return done.Task;
    }

    private async Task RunAsync()
    {
        while (true)
        {
            while (_actions.TryDequeue(out var action))
            {
                await action();
                await FlushAsync();
            }
            while (_inbox.TryDequeue(out var c))
            {
                try
                {
                    // Issue 17: evicted (this node lost the room) or fenced: what waits goes to the room's host.
                    if (Closed) throw new RoomFencedException(RoomText);
                    if (!_loaded) await LoadAsync();
                    await HandleAsync(c);
                }
                catch (RoomFencedException)
                {
                    _outbox.Clear();
                    var waiting = new List<StanzaContext> { c };
                    while (_inbox.TryDequeue(out var next)) waiting.Add(next);
                    service.Fenced(this, waiting);
                    Volatile.Write(ref _running, 0);
                    return;
                }
                catch (Exception ex)
                {
                    service.Logger.LogError(ex, "Room {Room} failed on a {Name}", Jid, c.Name);
                    _outbox.Clear();
                    if (c.Type is not ("error" or "result")) Error(c.Stanza, StanzaErrors.InternalServerError);
                }
                await FlushAsync();
            }
            if (service.TryUnload(this)) return;
            Volatile.Write(ref _running, 0);
            if ((_inbox.IsEmpty && _actions.IsEmpty) || Interlocked.Exchange(ref _running, 1) != 0) return;
        }
    }

    /// Issue 17: the sessions of occupants that are gone from the directory (their node died) leave the room, through
    /// the unavailable presence their server would have sent.
    public void PostGoneSessions(Func<Jid, bool> gone)
    {
        _actions.Enqueue(() =>
        {
            foreach (var o in _occupants.ToList())
                foreach (var s in o.Sessions.ToList())
                    if (gone(s))
                    {
                        var p = new Element("presence", Ns.Client).SetAttr("from", s.ToString())
                            .SetAttr("to", OccupantJid(o).ToString()).SetAttr("type", "unavailable");
                        _inbox.Enqueue(new StanzaContext(p, s, OccupantJid(o), null));
                    }
            return ValueTask.CompletedTask;
        });
        if (Interlocked.Exchange(ref _running, 1) == 0) _ = Task.Run(RunAsync);
    }

    private async ValueTask LoadAsync()
    {
        _loaded = true;
        if (!service.IsPersistentRoom(Jid.Local!)) return;
        var record = await service.Store.LoadRoomAsync(RoomText);
        if (record is null) return;
        Exists = true;
        Config = record.Config;
        Affiliations = new Dictionary<string, MucAffiliation>(record.Affiliations, StringComparer.Ordinal);
        Subject = record.Subject;
        SubjectNick = record.SubjectNick;
        Nicks = new Dictionary<string, string>(record.Nicks, StringComparer.Ordinal);
        foreach (var (stamp, message) in await service.Store.LoadHistoryAsync(RoomText, HistoryCapacity))
            _history.AddLast(new HistoryEntry(stamp, message));
    }

    private ValueTask HandleAsync(StanzaContext c) => c.Name switch
    {
        "presence" => HandlePresenceAsync(c),
        "message" => HandleMessageAsync(c),
        "iq" => HandleIqAsync(c),
        _ => ValueTask.CompletedTask,
    };

    private async ValueTask FlushAsync()
    {
        if (_outbox.Count == 0) return;
        var batch = _outbox.ToArray();
        _outbox.Clear();
        foreach (var e in batch) await service.Router.RouteAsync(e, null);
    }

    /// Writes the room's stored record and its directory entry; temporary rooms only update the directory.
    private async ValueTask SaveAsync()
    {
        // Both writes are queued together so that they share one storage commit.
        var record = Config.Persistent
            ? service.Store.SaveRoomAsync(RoomText, new MucRoomRecord
            {
                Config = Config, Affiliations = Affiliations, Subject = Subject, SubjectNick = SubjectNick, Nicks = Nicks,
            }).AsTask()
            : Task.CompletedTask;
        var summary = service.UpdateSummaryAsync(Jid.Local!, new MucRoomSummary
        {
            Title = Config.Title, Public = Config.Public && !Locked, Persistent = Config.Persistent,
            Owners = Affiliations.Where(a => a.Value == MucAffiliation.Owner).Select(a => a.Key).ToList(),
        }).AsTask();
        await Task.WhenAll(record, summary);
    }

    // ---- Lookups ----

    private MucOccupant? BySession(Jid full)
    {
        foreach (var o in _occupants)
            foreach (var s in o.Sessions)
                if (s == full) return o;
        return null;
    }

    private MucOccupant? ByNick(string nick)
    {
        string key;
        try { key = Precis.NicknameComparisonKey(nick); }
        catch (FormatException) { return null; }
        foreach (var o in _occupants)
            if (o.NickKey == key) return o;
        return null;
    }

    private IEnumerable<MucOccupant> ByBare(string bare) => _occupants.Where(o => o.Bare.ToString() == bare);

    private MucAffiliation AffiliationOf(Jid jid) =>
        Affiliations.TryGetValue(jid.Bare.ToString(), out var a) ? a : MucAffiliation.None;

    private int MaxUsers => Config.MaxUsers > 0 ? Math.Min(Config.MaxUsers, service.Options.MaxOccupantsPerRoom) : service.Options.MaxOccupantsPerRoom;

    private string OccupantIdFor(Jid bare)
    {
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(service.Secret), Encoding.UTF8.GetBytes(RoomText + "\n" + bare.Bare));
        return Convert.ToBase64String(mac, 0, 18);
    }

    private MucRole DefaultRole(MucAffiliation a) => a switch
    {
        MucAffiliation.Owner or MucAffiliation.Admin => MucRole.Moderator,
        MucAffiliation.Member => MucRole.Participant,
        MucAffiliation.None => Config.Moderated ? MucRole.Visitor : MucRole.Participant,
        _ => MucRole.None,
    };

    // ---- Output ----

    private Jid OccupantJid(MucOccupant o) => Jid.WithResource(o.Nick);

    private void Send(Element e) => _outbox.Add(e);

    /// An error reply from the addressed room JID (RFC 6120 §8.3.1), keeping the original payload.
    private void Error(Element stanza, string condition, string? text = null, string? type = null)
    {
        if (stanza.Attr("type") == "error") return;
        Send(StanzaErrors.Reply(stanza, condition, text, type));
    }

    private void Result(StanzaContext c, Element? payload = null)
    {
        var reply = new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", c.Stanza.Attr("id"))
            .SetAttr("from", c.To!.ToString()).SetAttr("to", c.From.ToString());
        if (payload is not null) reply.Add(payload);
        Send(reply);
    }

    /// An occupant's presence as one receiver sees it (XEP-0045 §7.2.3): real JIDs only to moderators, or to everyone
    /// in a non-anonymous room; status codes and extra item attributes as the caller says.
    private Element OccupantPresence(MucOccupant o, MucOccupant receiver, Jid to, string? type, IEnumerable<int>? codes = null,
        Action<Element>? item = null, Action<Element>? x = null)
    {
        var p = new Element("presence", Ns.Client).SetAttr("from", OccupantJid(o).ToString()).SetAttr("to", to.ToString());
        if (type is not null) p.SetAttr("type", type);
        else foreach (var child in o.Presence.Elements()) p.Add(child.Clone());
        var mucX = new Element("x", Ns.MucUser);
        var itemEl = new Element("item", Ns.MucUser).SetAttr("affiliation", MucNames.Of(o.Affiliation)).SetAttr("role", MucNames.Of(o.Role));
        if (Config.NonAnonymous || receiver.Role == MucRole.Moderator) itemEl.SetAttr("jid", o.Sessions.FirstOrDefault()?.ToString() ?? o.Bare.ToString());
        item?.Invoke(itemEl);
        mucX.Add(itemEl);
        if (codes is not null)
            foreach (var code in codes) mucX.Add(new Element("status", Ns.MucUser).SetAttr("code", code.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        x?.Invoke(mucX);
        p.Add(mucX);
        p.Add(new Element("occupant-id", Ns.OccupantId).SetAttr("id", o.OccupantId));
        return p;
    }

    /// Sends an occupant's presence to every occupant; the occupant's own sessions also get 110 and the self codes.
    private void BroadcastPresence(MucOccupant o, string? type, IEnumerable<int>? codes = null, IEnumerable<int>? selfCodes = null,
        Action<Element>? item = null, Action<Element>? x = null)
    {
        foreach (var r in _occupants)
        {
            foreach (var s in r.Sessions)
            {
                var all = new List<int>();
                if (ReferenceEquals(r, o)) all.Add(110);
                if (codes is not null) all.AddRange(codes);
                if (ReferenceEquals(r, o) && selfCodes is not null) all.AddRange(selfCodes);
                Send(OccupantPresence(o, r, s, type, all, item, x));
            }
        }
    }

    private void SendToOccupants(Element message)
    {
        foreach (var r in _occupants)
            foreach (var s in r.Sessions)
                Send(message.Clone().SetAttr("to", s.ToString()));
    }

    /// A message from the room itself carrying status codes (XEP-0045 §10.2.1: configuration changes).
    private void StatusMessage(params int[] codes)
    {
        var x = new Element("x", Ns.MucUser);
        foreach (var code in codes) x.Add(new Element("status", Ns.MucUser).SetAttr("code", code.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        SendToOccupants(new Element("message", Ns.Client).SetAttr("type", "groupchat").SetAttr("from", RoomText).Add(x));
    }
}
