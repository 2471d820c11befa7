using System.Globalization;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams.StreamManagement;

/// Resumption (XEP-0198 §5), detaching on connection loss, and the real end of a session.
public sealed partial class StreamManagementService
{
    internal readonly record struct ResumeResult(Element Reply, StreamManagementSession? Session, XmppStream? Previous, bool StreamError);

    /// &lt;resume previd='…' h='…'/&gt; on an authenticated, unbound stream of account bare.
    internal ResumeResult TryResume(XmppStream stream, Jid bare, Element resume)
    {
        var previd = resume.Attr("previd");
        if (string.IsNullOrEmpty(previd) || !uint.TryParse(resume.Attr("h"), NumberStyles.None, CultureInfo.InvariantCulture, out var h))
            return new(Failed(StanzaErrors.BadRequest, null), null, null, false);
        if (!_resumable.TryGetValue(previd, out var sm) || sm.Session.Jid.Bare != bare)
        {
            // XEP-0198 §5: unknown or expired → item-not-found, with the old session's 'h' when we still know it
            // (only to its own account), so the client learns which of its stanzas arrived.
            uint? known = _ended.TryGetValue(previd, out var e) && e.Bare == bare.ToString() && e.Until > Now ? e.Handled : null;
            return new(Failed(StanzaErrors.ItemNotFound, known), null, null, false);
        }
        switch (sm.TakeOver(stream, h, out var previous, out var sent))
        {
            case ResumeOutcome.HandledTooHigh:
                return new(HandledCountTooHigh(h, sent), null, null, true);
            case ResumeOutcome.Gone:
                return new(Failed(StanzaErrors.ItemNotFound, sm.Handled), null, null, false);
        }
        var resumed = new Element("resumed", Ns.StreamManagement)
            .SetAttr("previd", previd)
            .SetAttr("h", sm.Handled.ToString(CultureInfo.InvariantCulture));
        logger.LogDebug("Resuming {Jid} from {Ip}", sm.Session.Jid, stream.RemoteAddress);
        return new(resumed, sm, previous, false);
    }

    /// The connection of a stream-managed session ended. A resumable session that was not closed on purpose
    /// waits detached (still bound, queueing stanzas, no unavailable presence yet); any other ends now.
    internal async ValueTask StreamEndedAsync(StreamManagementSession sm, XmppStream stream, bool endsSession)
    {
        if (sm.Detach(stream, endsSession, out var generation))
        {
            await EndAsync(sm, endsSession ? "its stream was closed" : "it was not resumable");
            return;
        }
        if (generation == 0) return; // another stream owns the session now (it was resumed)
        logger.LogDebug("{Jid} lost its connection; resumable for {Seconds} s", sm.Session.Jid, sm.ResumeTimeout.TotalSeconds);
        _ = ExpireLaterAsync(sm, generation);
        var unacked = Modules.SessionDetached.Count > 0 ? sm.UnackedStanzas() : [];
        foreach (var handler in Modules.SessionDetached)
        {
            try { await handler(sm.Session, unacked); }
            catch (Exception ex) { logger.LogError(ex, "Session-detached handler failed for {Jid}", sm.Session.Jid); }
        }
    }

    private async Task ExpireLaterAsync(StreamManagementSession sm, long generation)
    {
        try
        {
            await Task.Delay(sm.ResumeTimeout, time);
            if (sm.ExpireIfStill(generation)) await EndAsync(sm, "it was not resumed in time");
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Ending the detached session of {Jid} failed", sm.Session.Jid);
        }
    }

    internal void EndInBackground(StreamManagementSession sm, string reason) =>
        _ = Task.Run(async () =>
        {
            try { await EndAsync(sm, reason); }
            catch (Exception ex) { logger.LogError(ex, "Ending the session of {Jid} failed", sm.Session.Jid); }
        });

    /// The session really ends: unbound, session-closed handlers (unavailable presence and the like), then every
    /// stanza the client never acknowledged is handled as if sent to an unavailable resource (RFC 6121 §8.5.3.2.1).
    private async ValueTask EndAsync(StreamManagementSession sm, string reason)
    {
        var session = sm.Session;
        if (sm.Id is { } id)
        {
            _resumable.TryRemove(id, out _);
            Remember(id, session.Jid.Bare.ToString(), sm.Handled);
        }
        var unacked = sm.TakeUnacked();
        logger.LogDebug("Session {Jid} ends because {Reason}; {Count} unacknowledged stanzas", session.Jid, reason, unacked.Count);
        using (Modules.BeginEnding(session))
            if (directory.Unbind(session) is not null || session.IsReplaced)
                await Modules.EndSessionAsync(session, logger);
        await RerouteAsync(unacked);
    }

    /// Messages to the account (IsReroutable) go back to the router with a XEP-0203 delay: now that the resource is gone they reach another
    /// resource or the offline spool, once. A message to the bare JID that other resources got as well is routed on
    /// only by the last of them to give it back, and only if none delivered it (SharedDelivery). IQ requests get
    /// service-unavailable; presence and IQ responses are dropped (RFC 6121 §8.5.3.2.1).
    private async ValueTask RerouteAsync(List<UnackedStanza> unacked)
    {
        foreach (var item in unacked)
        {
            var stanza = item.Stanza;
            var type = stanza.Attr("type");
            try
            {
                switch (stanza.Name)
                {
                    case "message" when IsReroutable(stanza) && (item.Shared is null || item.Shared.Release()):
                        var message = stanza.Clone();
                        if (message.Child("delay", Ns.Delay) is null)
                        {
                            message.Add(new Element("delay", Ns.Delay)
                                .SetAttr("from", domains.Default)
                                .SetAttr("stamp", item.QueuedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)));
                        }
                        await router.RouteAsync(message, null);
                        break;
                    case "iq" when type is "get" or "set":
                        await router.BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
                        break;
                }
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Re-routing an unacknowledged {Name} failed", stanza.Name);
            }
        }
    }

    /// XEP-0198 §4 leaves it to the server what happens to unacknowledged stanzas. Only a message that is itself a
    /// message to the account goes back to the router (and so possibly to the offline spool): a MAM result, a carbon
    /// copy, a pubsub notification or a groupchat message (live or room history) is a view of something kept elsewhere
    /// (the archive, the other resource's conversation, the PEP node, the room's archive), and spooling it would hand
    /// the client an old copy as a new message and fill the spool's quota with it.
    internal static bool IsReroutable(Element message)
    {
        if (message.Attr("type") is "error" or "groupchat" or "headline") return false;
        foreach (var child in message.Elements())
        {
            if (child.Name == "result" && child.Namespace?.StartsWith("urn:xmpp:mam:", StringComparison.Ordinal) == true) return false;
            if (child.Namespace is Ns.Carbons or Ns.PubSubEvent) return false;
        }
        return true;
    }

    private void Remember(string id, string bare, uint handled)
    {
        var now = Now;
        var keep = ServerMaxResume > TimeSpan.FromMinutes(5) ? ServerMaxResume : TimeSpan.FromMinutes(5);
        _ended[id] = new Ended(bare, handled, now + keep);
        if (_ended.Count <= MaxRemembered) return;
        foreach (var kv in _ended)
            if (kv.Value.Until <= now) _ended.TryRemove(kv.Key, out _);
        while (_ended.Count > MaxRemembered && _ended.MinBy(kv => kv.Value.Until) is { Key: { } oldest })
            _ended.TryRemove(oldest, out _);
    }
}
