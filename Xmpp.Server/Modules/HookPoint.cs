namespace Xmpp.Server.Modules;

/// Named points of the routing pipeline where modules plug in.
public enum HookPoint
{
    /// Every stanza a local client sends, after 'from' is stamped and before routing.
    Inbound,

    /// Every stanza that arrived over a link from another server, after the link checked its addresses and before
    /// routing: where checks on the recipient's side (blocking) and scrubbing of what a remote sender may not set
    /// (our archive ids) happen, since Inbound sees only local clients.
    FromRemote,

    /// Presence sent by a local client (broadcast, directed or subscription management).
    OutboundPresence,

    /// A message addressed to an existing local account (bare or full JID), from a local or a remote sender, before a
    /// resource is chosen; a hook that takes it decides alone what becomes of it.
    InboundMessage,

    /// Presence addressed to a local account (bare or full JID).
    InboundPresence,

    /// A stanza about to be handed to one chosen resource; a hook may change or take it. Runs once, on the node that
    /// routes it (archive ids, carbon copies), whichever node holds the resource's session.
    Deliver,

    /// After Deliver, a stanza about to be written to a session this node holds: where per-session queues live (the
    /// offline drain's hold, XEP-0352 CSI), so StanzaContext.TargetSession is never null here. In a cluster it runs on
    /// the node that holds the session, for stanzas routed there from another node as for local ones.
    DeliverToSession,

    /// A message to a local account that no resource can take now (offline spool, archive).
    Undeliverable,
}
