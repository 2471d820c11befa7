using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules;

/// One stanza on its way through the router. A Deliver hook's context is reused for later deliveries once the hooks
/// have returned (Router.DeliverAsync): a Deliver hook keeps the stanza if it must, never the context.
public sealed class StanzaContext(Element stanza, Jid from, Jid? to, ISession? origin)
{
    public Element Stanza { get; set; } = stanza;
    public Jid From { get; private set; } = from;
    public Jid? To { get; private set; } = to;

    /// The local session that sent the stanza, or null for stanzas the server generated.
    public ISession? Origin { get; private set; } = origin;

    /// For Deliver hooks: the resource chosen to receive the stanza.
    public SessionEntry? Target { get => _target; init => _target = value; }

    private SessionEntry? _target;

    // One delivery context per thread, taken while a delivery's hooks run and put back after: a message delivered to
    // one resource costs no context of its own. A delivery that finds it taken (its hooks awaited and another delivery
    // started on this thread) makes a new one.
    [ThreadStatic] private static StanzaContext? t_spareDelivery;

    internal static StanzaContext RentForDelivery(Element stanza, Jid from, SessionEntry target)
    {
        var context = t_spareDelivery;
        if (context is null) return new StanzaContext(stanza, from, target.Jid, null) { Target = target };
        t_spareDelivery = null;
        context.Stanza = stanza;
        context.From = from;
        context.To = target.Jid;
        context.Origin = null;
        context._target = target;
        return context;
    }

    internal void ReturnDelivery()
    {
        Stanza = null!;
        _target = null;
        t_spareDelivery = this;
    }

    /// For Deliver hooks: the target's session when this node holds it (its per-module state lives here), else null.
    public ISession? TargetSession => Target?.Sink as ISession;

    public string Name => Stanza.Name;
    public string? Type => Stanza.Attr("type");
}
