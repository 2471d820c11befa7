using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules;

/// One stanza on its way through the router.
public sealed class StanzaContext(Element stanza, Jid from, Jid? to, ISession? origin)
{
    public Element Stanza { get; set; } = stanza;
    public Jid From { get; } = from;
    public Jid? To { get; } = to;

    /// The local session that sent the stanza, or null for stanzas the server generated.
    public ISession? Origin { get; } = origin;

    /// For Deliver hooks: the resource chosen to receive the stanza.
    public SessionEntry? Target { get; init; }

    /// For Deliver hooks: the target's session when this node holds it (its per-module state lives here), else null.
    public ISession? TargetSession => Target?.Sink as ISession;

    public string Name => Stanza.Name;
    public string? Type => Stanza.Attr("type");
}
