using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams;

public sealed partial class XmppStream
{
    /// RFC 6120 §7: resource binding, server-generated or client-chosen.
    private async ValueTask HandleBindAsync(Element iq, Element bind)
    {
        if (iq.Attr("type") != "set")
        {
            await WriteDirectAsync(StanzaErrors.Reply(iq, StanzaErrors.BadRequest));
            return;
        }
        var bare = Jid.Create(_username, _domain);
        var requested = bind.ChildText("resource", Ns.Bind);
        Jid full;
        try
        {
            full = string.IsNullOrEmpty(requested) ? bare.WithResource(GenerateResource()) : bare.WithResource(requested);
        }
        catch (FormatException)
        {
            // RFC 6120 §7.7.2.1: the resource violates the resourcepart rules.
            await WriteDirectAsync(StanzaErrors.Reply(iq, StanzaErrors.BadRequest, "The resource is not a valid resourcepart"));
            return;
        }
        var existing = _s.Directory.Get(bare);
        if (existing.Count >= _s.Options.Limits.MaxResourcesPerAccount && existing.Find(full.Resource!) is null)
        {
            // RFC 6120 §7.6.2.1: too many resources bound to the account.
            await WriteDirectAsync(StanzaErrors.Reply(iq, StanzaErrors.ResourceConstraint, "Too many sessions for this account"));
            return;
        }

        var session = new ClientSession(full, this);
        EnterBound(session);
        // Written by this thread while nothing else can be queued yet (the session is not published), rather than
        // handed to the writer loop on another thread: one thread hand-off fewer per login.
        SendNowOrEnqueue(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", iq.Attr("id"))
            .Add(new Element("bind", Ns.Bind).Add(new Element("jid", Ns.Bind).SetText(full.ToString()))), tracked: false);
        await PublishSessionAsync(session);
    }

    /// The stream now serves a bound (or resumed) session: its writer starts, and what only the login needed goes (the
    /// SASL exchange and the mechanisms offered), so an idle session does not keep it.
    private void EnterBound(ClientSession session)
    {
        StartWriter();
        _session = session;
        _state = StreamState.Bound;
        _auth = null;
        _offered = null;
    }

    /// Makes a bound session reachable (RFC 6120 §7 bind or XEP-0386 Bind 2) and tells the modules.
    private async ValueTask PublishSessionAsync(ClientSession session)
    {
        if (_s.Directory.Get(session.Jid.Bare).Find(session.Jid.Resource!) is { Sink: ClientSession old }) await EndReplacedAsync(old);
        var previous = _s.Directory.Bind(session.InitialEntry());
        // Another login for this resource that got in between: it is replaced the same way, its end run by its cleanup.
        previous?.Sink.Replace("Replaced by a new connection with the same resource");
        // In a cluster: this stream reads the client's next stanza only once every node can find the session in the
        // shared directory, so whoever learns of it from what the client sends can reach it.
        await _s.Directory.PublishedAsync(session);
        _s.Logger.LogDebug("Bound {Jid}", session.Jid);
        foreach (var handler in _s.Modules.SessionBound) await handler(session);
    }

    /// RFC 6120 §7.7.2.2: our policy for a resource conflict is that the new session replaces the older one. The older
    /// one ends completely first (unavailable presence to contacts, held stanzas released to the spool), so nothing it
    /// leaves behind is mistaken for the new session, which sends its own presence after this.
    private async ValueTask EndReplacedAsync(ClientSession old)
    {
        old.MarkReplaced();
        using (_s.Modules.BeginEnding(old))
        {
            _s.Directory.Unbind(old);
            await _s.Modules.EndSessionAsync(old, _s.Logger);
        }
        old.Close(StreamErrors.Conflict, "Replaced by a new connection with the same resource");
    }

    private static string GenerateResource() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    private string? _rateLimitAddress;

    /// An established session's stanza: validate, stamp 'from' (RFC 6120 §8.1.2.1) and route.
    private async ValueTask HandleStanzaAsync(Element e)
    {
        _s.Metrics.StanzasIn.Add(1, Metrics.ServerMetrics.Tag("kind", e.Name));
        var session = _session!;
        if (e.Namespace != Ns.Client || e.Name is not ("message" or "presence" or "iq"))
        {
            if (_s.Modules.FindStreamElement(e.Namespace, e.Name) is { } handler)
            {
                await handler(session, e);
                return;
            }
            throw new XmppStreamException(StreamErrors.UnsupportedStanzaType, $"Unsupported element {e.Name}");
        }

        if (e.Attr("from") is { } from)
        {
            if (!Jid.TryParse(from, out var claimed) || !(claimed == session.Jid || claimed == session.Jid.Bare))
                throw new XmppStreamException(StreamErrors.InvalidFrom, "The 'from' address is not yours");
        }
        e.SetAttr("from", session.Jid.ToString());
        if (_s.RateLimits.Check(e, session.Jid.Bare.ToString(), _rateLimitAddress ??= _s.RateLimits.AddressKey(RemoteAddress)) is { } refusal)
        {
            _s.Metrics.Refuse(e.Name + "-rate");
            session.Send(ErrorToSender(e, StanzaErrors.PolicyViolation, refusal, "wait"));
            return;
        }

        if (e.Name == "iq")
        {
            // Writes queued for this client's earlier stanzas become durable before any IQ of its own is handled, so
            // an answer (a ping's, say) confirms that everything sent before it is stored, as the XEP-0198 ack does.
            if (session.TakeQueuedWrites()) await _s.Storage.FlushAsync();
            var type = e.Attr("type");
            if (e.Attr("id") is null)
            {
                // RFC 6120 §8.2.3: an IQ without id cannot be answered meaningfully.
                if (type is "get" or "set") session.Send(ErrorToSender(e, StanzaErrors.BadRequest, "An iq needs an id"));
                return;
            }
            if (e.Child("bind", Ns.Bind) is not null)
            {
                // RFC 6120 §7.1: one resource per stream.
                session.Send(ErrorToSender(e, StanzaErrors.NotAllowed, "A resource is already bound on this stream"));
                return;
            }
            if (type == "set" && e.Child("session", Ns.Session) is not null && IsToServer(e))
            {
                // RFC 6121 Appendix E: the legacy session IQ is accepted and does nothing.
                session.Send(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", e.Attr("id")));
                return;
            }
        }
        await _s.Router.RouteAsync(e, session);
    }

    private bool IsToServer(Element e)
    {
        var to = e.Attr("to");
        return to is null || to == _domain;
    }

    private Element ErrorToSender(Element stanza, string condition, string text, string? type = null)
    {
        var reply = StanzaErrors.Reply(stanza, condition, text, type);
        reply.SetAttr("from", stanza.Attr("to") ?? _domain);
        return reply;
    }
}
