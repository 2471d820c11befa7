using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Cluster;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams.StreamManagement;

/// Resumption on another node of a cluster (issue 17, XEP-0198 §5). The SM-ID ends with the issuing node's id
/// (".{base64url(node)}" after the random part, which alone keeps it unguessable; the old node checks it belongs to the
/// resuming account). A node that does not hold the session asks the issuing node to hand it over: that node ends it
/// there without re-routing anything and sends the resource, its inbound count, its presence and the stanzas the client
/// has not acknowledged (in chunks, each within one bus frame); this node binds the same full JID, answers
/// &lt;resumed/&gt; and sends them again. A dead or silent node: &lt;failed&gt; with item-not-found, and the client binds
/// anew and catches up from the offline spool and MAM.
public sealed partial class StreamManagementService
{
    private const string HandOverKind = "sm-handover";
    private const string ChunkKind = "sm-chunk";
    private const string TakenKind = "sm-taken";
    private static readonly TimeSpan HandOverTimeout = TimeSpan.FromSeconds(5);

    // A chunk is asked again when no answer comes within this, at most ChunkAttempts times (the old node keeps the
    // chunks 30 s and reading one changes nothing there).
    private static readonly TimeSpan ChunkAttemptTimeout = TimeSpan.FromSeconds(2);
    private const int ChunkAttempts = 4;

    // The new node confirms it took the session (sm-taken) as soon as it has the hand-over's answer, asking again when
    // no answer comes within TakenAttemptTimeout, at most TakenAttempts times. The old node waits TakenWithin from its
    // answer: the new node waits at most HandOverTimeout for that answer, so a confirmation that does not come by then
    // means the answer was lost or came after the new node had given up.
    private static readonly TimeSpan TakenAttemptTimeout = TimeSpan.FromSeconds(1);
    private const int TakenAttempts = 3;
    internal static readonly TimeSpan TakenWithin = HandOverTimeout + TimeSpan.FromSeconds(3);

    // Stanzas handed over and not yet fetched by the new node, kept for a short while.
    private readonly ConcurrentDictionary<string, (List<string> Chunks, DateTimeOffset Until)> _handedOut = new(StringComparer.Ordinal);
    private INodeBus? _bus;
    private bool _busResolved;

    private INodeBus? Bus
    {
        get
        {
            if (!_busResolved)
            {
                _bus = services.GetService<INodeBus>();
                _busResolved = true;
            }
            return _bus;
        }
    }

    private string NewId()
    {
        var random = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_');
        return Bus is { } bus ? random + "." + Base64Url(Encoding.UTF8.GetBytes(bus.LocalNode)) : random;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// The node that issued an SM-ID, when it is another node of the cluster.
    internal string? RemoteNodeOf(string? previd)
    {
        if (Bus is not { } bus || previd is null || _resumable.ContainsKey(previd)) return null;
        int dot = previd.LastIndexOf('.');
        if (dot < 0 || dot == previd.Length - 1) return null;
        string node;
        try
        {
            var b64 = previd[(dot + 1)..].Replace('-', '+').Replace('_', '/');
            node = Encoding.UTF8.GetString(Convert.FromBase64String(b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '=')));
        }
        catch (FormatException) { return null; }
        if (node != bus.LocalNode) return node;
        // Issued here and handed over since: it lives where it went.
        return _movedTo.TryGetValue(previd, out var moved) && moved.Until > Now ? moved.Node : null;
    }

    private void RegisterClusterHandlers()
    {
        if (Bus is not { } bus) return;
        bus.OnRequest(HandOverKind, HandOverAsync);
        bus.OnRequest(ChunkKind, (_, request) => ValueTask.FromResult<Element?>(Chunk(request)));
        bus.OnRequest(TakenKind, (from, request) => ValueTask.FromResult<Element?>(Taken(from, request)));
    }

    internal readonly record struct HandOver(Element Reply, StreamManagementSession? Session, bool StreamError);

    /// &lt;resume/&gt; for a session another node issued: asks it to hand the session over.
    internal async ValueTask<HandOver> ResumeFromNodeAsync(XmppStream stream, Jid bare, Element resume, string node)
    {
        var previd = resume.Attr("previd")!;
        if (!uint.TryParse(resume.Attr("h"), NumberStyles.None, CultureInfo.InvariantCulture, out var h))
            return new(Failed(StanzaErrors.BadRequest, null), null, false);
        var bus = Bus!;
        var request = new Element("handover", Ns.Cluster).SetAttr("previd", previd).SetAttr("bare", bare.ToString())
            .SetAttr("h", h.ToString(CultureInfo.InvariantCulture));
        var answer = await bus.RequestAsync(node, HandOverKind, request, HandOverTimeout);
        // A session handed over before lives on the node it went to: follow it (a few hops at most).
        for (int hop = 0; hop < 3 && answer?.Attr("moved") is { } movedTo && movedTo != bus.LocalNode; hop++)
        {
            node = movedTo;
            answer = await bus.RequestAsync(node, HandOverKind, request, HandOverTimeout);
        }
        if (answer?.Attr("moved") is not null) answer = null;
        if (answer is null || answer.Attr("error") is { } error)
        {
            // XEP-0198 §5: the session is unknown here and its node is gone or does not have it.
            if (answer?.Attr("error") == "handled-count-too-high" && uint.TryParse(answer.Attr("sent"), out var sentThere))
                return new(HandledCountTooHigh(h, sentThere), null, true);
            logger.LogDebug("Resumption of {Bare} from node {Node} failed: {Why}", bare, node, answer?.Attr("error") ?? "no answer");
            return new(Failed(StanzaErrors.ItemNotFound, null), null, false);
        }
        if (!Jid.TryParse(answer.Attr("jid"), out var full) || full!.Bare != bare
            || !uint.TryParse(answer.Attr("handled"), NumberStyles.None, CultureInfo.InvariantCulture, out var handled)
            || !int.TryParse(answer.Attr("count"), NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            return new(Failed(StanzaErrors.ItemNotFound, null), null, false);
        // This node takes the session: the old node keeps what it handed over (if anything) until it hears so.
        if (count > 0) _ = ConfirmTakenAsync(bus, node, previd, full);
        var stanzas = Decode(answer);
        while (stanzas.Count < count)
        {
            var ask = new Element("chunk", Ns.Cluster).SetAttr("previd", previd).SetAttr("from", stanzas.Count.ToString(CultureInfo.InvariantCulture));
            // A lost request or answer is asked again (reading a chunk changes nothing on the old node).
            int from = stanzas.Count;
            var more = await bus.RequestAgainAsync(node, ChunkKind, ask, ChunkAttemptTimeout, ChunkAttempts, attempt =>
                logger.LogWarning("Resumption of {Jid}: no answer from node {Node} for the stanzas from {From} (attempt {Attempt} of {Attempts})",
                    full, node, from, attempt, ChunkAttempts));
            if (more is null) break;
            var next = Decode(more);
            if (next.Count == 0) break;
            stanzas.AddRange(next);
        }
        if (stanzas.Count < count)
            logger.LogWarning("Resumption of {Jid}: {Missing} of {Count} unacknowledged stanzas did not arrive from node {Node}",
                full, count - stanzas.Count, count, node);
        var timeout = TimeSpan.FromSeconds(int.TryParse(answer.Attr("max"), out var max) && max > 0 ? max : (int)ServerMaxResume.TotalSeconds);
        var session = new ClientSession(full, stream);
        var sm = new StreamManagementSession(this, session, stream, previd, timeout, h, handled, live: false);
        foreach (var s in stanzas) sm.Adopt(s);
        _resumable[previd] = sm;
        session.EnableStreamManagement(sm, null);
        var entry = answer.Child("entry", Ns.Cluster);
        var resumed = new Element("resumed", Ns.StreamManagement).SetAttr("previd", previd)
            .SetAttr("h", handled.ToString(CultureInfo.InvariantCulture));
        logger.LogInformation("Resumed {Jid} handed over from node {Node} ({Count} unacknowledged stanzas)", full, node, stanzas.Count);
        _adopted[sm] = entry;
        return new(resumed, sm, false);
    }

    private readonly ConcurrentDictionary<StreamManagementSession, Element?> _adopted = new();

    private async Task ConfirmTakenAsync(INodeBus bus, string node, string previd, Jid full)
    {
        var request = new Element("taken", Ns.Cluster).SetAttr("previd", previd);
        var answer = await bus.RequestAgainAsync(node, TakenKind, request, TakenAttemptTimeout, TakenAttempts, attempt =>
        {
            if (attempt == TakenAttempts)
                logger.LogWarning("Resumption of {Jid}: node {Node} did not confirm that this node took the session", full, node);
        });
        // Too late: the old node has routed the stanzas again already (each with its stanza-id, so a client that gets
        // one twice can tell).
        if (answer?.Attr("late") is not null)
            logger.LogWarning("Resumption of {Jid}: node {Node} had routed the unacknowledged stanzas again before it heard this node took them", full, node);
    }

    // The old node: what it handed over, until the new node confirms it took the session.
    private sealed record Unconfirmed(string Node, Jid Jid, List<UnackedStanza> Stanzas);

    private readonly ConcurrentDictionary<string, Unconfirmed> _unconfirmed = new(StringComparer.Ordinal);

    private Element Taken(string from, Element request)
    {
        var previd = request.Attr("previd") ?? "";
        if (_unconfirmed.TryGetValue(previd, out var pending) && pending.Node == from && _unconfirmed.TryRemove(new(previd, pending)))
            return new Element("taken", Ns.Cluster);
        return new Element("taken", Ns.Cluster).SetAttr("late", "1");
    }

    // No confirmation in time: the answer was lost, or came after the new node gave up (its client got <failed> and
    // binds anew). The session is gone from here already, so what the client never acknowledged is routed again as
    // when a detached session expires (another resource of the account or the offline spool; the same stanzas with
    // the same stanza-ids, so a copy the new node did deliver is recognisable as one).
    private async Task RerouteUnconfirmedLaterAsync(string previd, Unconfirmed pending)
    {
        try
        {
            await Task.Delay(TakenWithin, time);
            if (!_unconfirmed.TryRemove(new(previd, pending))) return;
            logger.LogWarning("Node {Node} did not confirm it took {Jid} within {Seconds} s: its {Count} unacknowledged stanzas are routed again here",
                pending.Node, pending.Jid, TakenWithin.TotalSeconds, pending.Stanzas.Count);
            await RerouteAsync(pending.Stanzas);
        }
        catch (Exception ex) { logger.LogError(ex, "Routing again what {Jid} had not acknowledged failed", pending.Jid); }
    }

    /// After &lt;resumed/&gt; went out on the new node: the session is bound again with what the directory knew of it.
    internal SessionEntry AdoptedEntry(StreamManagementSession sm, SessionEntry initial)
    {
        if (!_adopted.TryRemove(sm, out var e) || e is null) return initial;
        Element? presence = e.ChildText("presence", Ns.Cluster) is { Length: > 0 } p ? StoredStanza.Parse(Convert.FromBase64String(p)) : null;
        return initial with
        {
            Available = e.Attr("available") == "1",
            Priority = int.TryParse(e.Attr("priority"), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var pr) ? pr : 0,
            Presence = presence,
            RosterRequested = e.Attr("roster") == "1",
            Carbons = e.Attr("carbons") == "1",
            CsiInactive = e.Attr("csi") == "1",
            BlocklistRequested = e.Attr("blocklist") == "1",
            UserAgentId = e.Attr("ua"),
        };
    }

    // The old node: the session leaves this node without its end (no unavailable presence, nothing re-routed).
    private async ValueTask<Element?> HandOverAsync(string from, Element request)
    {
        var previd = request.Attr("previd") ?? "";
        if (!_resumable.TryGetValue(previd, out var sm) || sm.Session.Jid.Bare.ToString() != request.Attr("bare"))
        {
            if (_movedTo.TryGetValue(previd, out var moved) && moved.Bare == request.Attr("bare") && moved.Until > Now)
                return new Element("handover", Ns.Cluster).SetAttr("moved", moved.Node);
            return new Element("handover", Ns.Cluster).SetAttr("error", "item-not-found");
        }
        if (!uint.TryParse(request.Attr("h"), NumberStyles.None, CultureInfo.InvariantCulture, out var h))
            return new Element("handover", Ns.Cluster).SetAttr("error", "bad-request");
        var outcome = sm.HandOut(h, out var previous, out var sent, out var unacked);
        if (outcome == ResumeOutcome.HandledTooHigh)
            return new Element("handover", Ns.Cluster).SetAttr("error", "handled-count-too-high")
                .SetAttr("sent", sent.ToString(CultureInfo.InvariantCulture));
        if (outcome == ResumeOutcome.Gone) return new Element("handover", Ns.Cluster).SetAttr("error", "item-not-found");
        _resumable.TryRemove(previd, out _);
        var session = sm.Session;
        RememberMove(previd, session.Jid.Bare.ToString(), from);
        var known = directory.Find(session.Jid);
        directory.Unbind(session);
        previous?.CloseWithError(StreamErrors.Conflict, "Resumed on another node");
        var chunks = Chunks(unacked.ConvertAll(u => u.Stanza));
        var answer = new Element("handover", Ns.Cluster).SetAttr("jid", session.Jid.ToString())
            .SetAttr("handled", sm.Handled.ToString(CultureInfo.InvariantCulture))
            .SetAttr("count", unacked.Count.ToString(CultureInfo.InvariantCulture))
            .SetAttr("max", ((int)sm.ResumeTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture));
        if (known is not null)
        {
            var entry = new Element("entry", Ns.Cluster).SetAttr("available", known.Available ? "1" : "0")
                .SetAttr("priority", known.Priority.ToString(CultureInfo.InvariantCulture))
                .SetAttr("roster", known.RosterRequested ? "1" : "0").SetAttr("carbons", known.Carbons ? "1" : "0")
                .SetAttr("csi", known.CsiInactive ? "1" : "0").SetAttr("blocklist", known.BlocklistRequested ? "1" : "0")
                .SetAttr("ua", known.UserAgentId);
            if (known.Presence is { } p) entry.Add(new Element("presence", Ns.Cluster).SetText(Convert.ToBase64String(ElementWriter.ToBytes(p))));
            answer.Add(entry);
        }
        if (chunks.Count > 0) answer.Add(new Element("s", Ns.Cluster).SetText(chunks[0]));
        if (chunks.Count > 1) _handedOut[previd] = (chunks, Now + TimeSpan.FromSeconds(30));
        logger.LogInformation("Handed {Jid} over to node {Node} ({Count} unacknowledged stanzas)", session.Jid, from, unacked.Count);
        if (unacked.Count > 0)
        {
            var pending = new Unconfirmed(from, session.Jid, unacked);
            _unconfirmed[previd] = pending;
            _ = RerouteUnconfirmedLaterAsync(previd, pending);
        }
        await ValueTask.CompletedTask;
        return answer;
    }

    // Where sessions this node handed over went, so a later resumption elsewhere (the SM-ID still names this node) finds
    // them; kept as long as a detached session could wait, and bounded like the ended ones.
    private readonly ConcurrentDictionary<string, (string Bare, string Node, DateTimeOffset Until)> _movedTo = new(StringComparer.Ordinal);

    private void RememberMove(string previd, string bare, string node)
    {
        var now = Now;
        if (_movedTo.Count >= MaxRemembered)
            foreach (var (id, v) in _movedTo)
                if (v.Until <= now || _movedTo.Count >= MaxRemembered) _movedTo.TryRemove(id, out _);
        _movedTo[previd] = (bare, node, now + (ServerMaxResume > TimeSpan.FromMinutes(5) ? ServerMaxResume : TimeSpan.FromMinutes(5)));
    }

    private Element? Chunk(Element request)
    {
        foreach (var (id, v) in _handedOut)
            if (v.Until < Now) _handedOut.TryRemove(id, out _);
        if (!_handedOut.TryGetValue(request.Attr("previd") ?? "", out var held)
            || !int.TryParse(request.Attr("from"), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            return new Element("chunk", Ns.Cluster); // none (any more): an answer, so the new node does not ask again
        // Chunks hold whole stanzas; find the chunk that starts at the index the new node has reached.
        int at = 0;
        foreach (var chunk in held.Chunks)
        {
            if (at == index) return new Element("chunk", Ns.Cluster).Add(new Element("s", Ns.Cluster).SetText(chunk));
            at += chunk.Split(' ').Length;
        }
        return new Element("chunk", Ns.Cluster);
    }

    // Base64 of each stanza, space-separated, about a quarter of a stanza's size limit per chunk (so a chunk and its
    // frame stay within the bus's parser limits whatever the stanzas).
    private static List<string> Chunks(List<Element> stanzas)
    {
        int budget = Math.Max(4096, Protocol.Xml.ParserLimits.Default.MaxStanzaBytes / 4);
        var chunks = new List<string>();
        var current = new StringBuilder();
        foreach (var s in stanzas)
        {
            var text = Convert.ToBase64String(ElementWriter.ToBytes(s));
            if (current.Length > 0 && current.Length + text.Length + 1 > budget)
            {
                chunks.Add(current.ToString());
                current.Clear();
            }
            if (current.Length > 0) current.Append(' ');
            current.Append(text);
        }
        if (current.Length > 0) chunks.Add(current.ToString());
        return chunks;
    }

    private static List<Element> Decode(Element answer)
    {
        var list = new List<Element>();
        if (answer.ChildText("s", Ns.Cluster) is not { Length: > 0 } text) return list;
        foreach (var part in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            list.Add(StoredStanza.Parse(Convert.FromBase64String(part)));
        return list;
    }
}
