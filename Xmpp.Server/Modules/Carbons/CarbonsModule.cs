// XEP-0280: Message Carbons. Every carbons-enabled resource of an account sees both sides of its conversations.
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Carbons;

/// A resource turns carbons on or off for itself. Messages an account receives are copied, wrapped in
/// &lt;received/&gt;, to its enabled resources that did not get the original; messages a resource sends are copied,
/// wrapped in &lt;sent/&gt;, to the account's other enabled resources. Copies come from the account's bare JID, so a
/// wrapper from anyone else is a forgery and is dropped before it reaches a client.
[Xep("XEP-0280", "1.0.1")]
public sealed class CarbonsModule(ISessionDirectory directory, IRouter router, ILogger<CarbonsModule> logger) : IXmppModule
{
    /// Received copies are made when the original is handed to its resource: after hooks that filter deliveries,
    /// before hooks that hold them back (offline drain, CSI), since a held original is still delivered.
    public const int DeliverOrder = 500;

    /// Forged wrappers are dropped before anything else sees them.
    public const int GuardOrder = 0;

    private const string MamPrefix = "urn:xmpp:mam:";

    public void Register(IModuleBuilder module)
    {
        // §3: servers advertise carbons on their own disco#info.
        module.ServerFeature(Ns.Carbons);
        // §4, §5: clients send enable/disable to their server, with or without a 'to'.
        foreach (var target in new[] { IqTarget.Self, IqTarget.Server })
        {
            module.Iq(target, "enable", Ns.Carbons, c => Toggle(c, enabled: true));
            module.Iq(target, "disable", Ns.Carbons, c => Toggle(c, enabled: false));
        }
        // XEP-0386 §3.2: <enable/> inside a Bind 2 request starts the new session with carbons on; it cannot fail,
        // so nothing goes into <bound/>.
        module.Bind2Inline(Ns.Carbons, (session, request) =>
        {
            // Not bound yet: the entry starts out with carbons on.
            if (request.Name == "enable") session.AtBind(static e => e with { Carbons = true });
            return ValueTask.FromResult<Element?>(null);
        });
        module.Hook(HookPoint.Inbound, GuardOrder, RefuseWrappersFromClients);
        module.Hook(HookPoint.Inbound, DeliverOrder, CopySentAsync);
        module.Hook(HookPoint.Deliver, GuardOrder, GuardDelivery);
        module.Hook(HookPoint.Deliver, DeliverOrder, CopyReceivedAsync);
        // Before the offline spool (order 100): a copy nobody can take now is never spooled.
        module.Hook(HookPoint.Undeliverable, GuardOrder, DropUndeliverableCopies);
    }

    private ValueTask Toggle(IqContext c, bool enabled)
    {
        if (!c.IsSet) c.Error(StanzaErrors.BadRequest);
        // §4.1, §5.1: only the server's own clients have carbons to switch.
        else if (c.Origin is not { } session || session.Jid != c.From) c.Error(StanzaErrors.NotAllowed);
        else
        {
            // §10.1: repeated enables or disables are not errors.
            directory.SetCarbons(session, enabled);
            c.Result();
        }
        return ValueTask.CompletedTask;
    }

    /// §6: chat messages, and normal ones that carry a body or the IM payloads (receipts, markers, chat states) that
    /// keep every device's view of a conversation in step. Group chat, headlines, errors, private messages and
    /// messages that already are copies (carbons, archive results) are never copied.
    public static bool IsEligible(Element message)
    {
        if (message.Name != "message") return false;
        var type = message.Attr("type") ?? "normal";
        if (type is not ("chat" or "normal")) return false;
        // §9: <private/> opts out; XEP-0334 §4 <no-copy/> says the same in general terms.
        if (message.Child("private", Ns.Carbons) is not null || message.Child("no-copy", Ns.Hints) is not null) return false;
        if (IsWrapper(message)) return false;
        if (type == "chat") return true;
        foreach (var child in message.Elements())
        {
            if (child.Name is "body" && child.Namespace == Ns.Client) return true;
            if (child.Namespace is Ns.Receipts or Ns.ChatMarkers or Ns.ChatStates) return true;
        }
        return false;
    }

    /// A message that carries a carbon copy or an archive result rather than content of its own.
    public static bool IsWrapper(Element message)
    {
        foreach (var child in message.Elements())
        {
            if (child.Namespace == Ns.Carbons && child.Name is "received" or "sent") return true;
            if (child.Name == "result" && child.Namespace.StartsWith(MamPrefix, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private static bool IsCarbon(Element message) =>
        message.Child("received", Ns.Carbons) is not null || message.Child("sent", Ns.Carbons) is not null;

    private static bool Enabled(SessionEntry e) => e.Carbons;

    // ---- Sent copies (§8) ----

    private async ValueTask<bool> CopySentAsync(StanzaContext c)
    {
        if (c.Origin is not { } session || !IsEligible(c.Stanza)) return false;
        var owner = c.From.Bare;
        var set = directory.Get(owner);
        // A note to self reaches some of the account's resources directly (and CopyReceivedAsync leaves it alone):
        // those get no copy on top.
        IReadOnlyList<SessionEntry> direct = c.To is { } to && to.Bare == owner ? DirectRecipients(set, to) : [];
        foreach (var e in set.Entries)
        {
            // §8: every enabled resource except the sender, whether or not the sender has carbons on.
            if (ReferenceEquals(e.Sink, session) || !Enabled(e) || Contains(direct, e)) continue;
            await router.DeliverAsync(e, Wrap("sent", c.Stanza, owner, e.Jid));
        }
        return false;
    }

    // ---- Received copies (§7) ----

    private async ValueTask<bool> CopyReceivedAsync(StanzaContext c)
    {
        if (c.Stanza.Name != "message" || c.Target is not { } target) return false;
        var message = c.Stanza;
        bool isPrivate = message.Child("private", Ns.Carbons) is not null;
        if (isPrivate)
        {
            // §9: the receiving server SHOULD remove <private/> before delivering to the recipient.
            var stripped = message.Clone();
            stripped.RemoveAll("private", Ns.Carbons);
            c.Stanza = stripped;
        }
        if (isPrivate || !IsEligible(message)) return false;
        var owner = target.Jid.Bare;
        if (c.From.Bare == owner) return false; // a note to self: CopySentAsync made the copies
        var set = directory.Get(owner);
        if (set.Count < 2) return false;
        IReadOnlyList<SessionEntry> direct;
        if (Jid.TryParse(message.Attr("to"), out var addressed) && addressed == target.Jid) direct = [target];
        else
        {
            // To the bare JID (or to a resource that is gone, RFC 6121 §8.5.3.2.1): the router hands the original to
            // each most available resource and this hook runs for each of them; the copies are made on the first.
            direct = DirectRecipients(set, target.Jid.Bare);
            if (direct.Count > 0 && !ReferenceEquals(direct[0].Sink, target.Sink)) return false;
            if (direct.Count == 0) direct = [target];
        }
        foreach (var e in set.Entries)
        {
            // §7: resources that received the original get no copy.
            if (!Enabled(e) || Contains(direct, e)) continue;
            await router.DeliverAsync(e, Wrap("received", message, owner, e.Jid));
        }
        return false;
    }

    /// The resources the router gives a chat or normal message addressed to this JID (RFC 6121 §8.5.2.1.1, §8.5.3.1).
    private static IReadOnlyList<SessionEntry> DirectRecipients(ResourceSet set, Jid addressed) =>
        addressed.Resource is { } resource && set.Find(resource) is { } one ? [one] : set.MostAvailable();

    private static bool Contains(IReadOnlyList<SessionEntry> entries, SessionEntry e)
    {
        foreach (var d in entries)
            if (ReferenceEquals(d.Sink, e.Sink)) return true;
        return false;
    }

    /// §7, §8: the copy keeps the original's type, comes from the account's bare JID and goes to one full JID.
    private static Element Wrap(string direction, Element original, Jid owner, Jid to)
    {
        var copy = new Element("message", Ns.Client)
            .SetAttr("from", owner.ToString())
            .SetAttr("to", to.ToString())
            .SetAttr("type", original.Attr("type"));
        return copy.Add(new Element(direction, Ns.Carbons)
            .Add(new Element("forwarded", Ns.Forward).Add(original.Clone())));
    }

    // ---- Forged and stale copies (§11) ----

    /// Clients never send carbon wrappers; one that does is trying to make another client believe a message was
    /// sent or received that never was.
    private ValueTask<bool> RefuseWrappersFromClients(StanzaContext c)
    {
        if (c.Stanza.Name != "message" || !IsCarbon(c.Stanza)) return ValueTask.FromResult(false);
        logger.LogInformation("Refused a carbon wrapper sent by the client {Jid}", c.From);
        return Refuse(c);
    }

    private async ValueTask<bool> Refuse(StanzaContext c)
    {
        // The error leaves the wrapper out: echoed back, it would itself be a wrapper from someone else.
        var stub = new Element("message", Ns.Client);
        foreach (var name in new[] { "from", "to", "id", "type" }) stub.SetAttr(name, c.Stanza.Attr(name));
        await router.BounceAsync(stub, StanzaErrors.NotAcceptable, "Carbon copies are made by the server only");
        return true;
    }

    /// §11: a copy is genuine only when it comes from the recipient's own bare JID. The server guarantees that here, so
    /// clients that forget to check 'from' cannot be fooled by another entity's forged wrapper (for example one
    /// arriving from a remote server, which skips the Inbound stage). A genuine copy for a resource that has gone away
    /// (re-routed from its unsent queue) would reach the wrong resource, so it is dropped too.
    private ValueTask<bool> GuardDelivery(StanzaContext c)
    {
        if (c.Stanza.Name != "message" || c.Target is not { } target || !IsCarbon(c.Stanza)) return ValueTask.FromResult(false);
        if (!Jid.TryParse(c.Stanza.Attr("from"), out var from) || from != target.Jid.Bare)
        {
            logger.LogInformation("Dropped a carbon wrapper from {From} to {To}: only the account itself sends copies", c.From, target.Jid);
            return ValueTask.FromResult(true);
        }
        bool stale = !Jid.TryParse(c.Stanza.Attr("to"), out var to) || to != target.Jid;
        return ValueTask.FromResult(stale);
    }

    /// A copy that cannot be delivered now is not spooled: the resource it was made for is gone, and a forged one
    /// must not wait offline to bypass GuardDelivery.
    private ValueTask<bool> DropUndeliverableCopies(StanzaContext c) =>
        ValueTask.FromResult(c.Stanza.Name == "message" && IsCarbon(c.Stanza));
}
