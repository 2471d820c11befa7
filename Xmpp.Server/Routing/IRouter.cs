using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Routing;

/// The one place that decides where a stanza goes.
public interface IRouter
{
    /// Routes a stanza whose 'from' is already stamped. origin is the local session that sent it, or null for
    /// stanzas the server generates or forwards (those skip the Inbound and OutboundPresence stages).
    ValueTask RouteAsync(Element stanza, ClientSession? origin);

    /// Routes a stanza that arrived over a link from another server, whose addresses the link has checked: the
    /// FromRemote hooks run first, then it is routed like a stanza the server forwards (no client hooks).
    ValueTask RouteFromLinkAsync(Element stanza);

    /// Hands a stanza to one bound resource through the Deliver hooks (and, when this node holds the session, the
    /// DeliverToSession hooks); false when it could not be taken.
    ValueTask<bool> DeliverAsync(SessionEntry target, Element stanza);

    /// Hands a stanza whose Deliver hooks already ran on the node that routed it to a session this node holds, through
    /// the DeliverToSession hooks; false when it could not be taken.
    ValueTask<bool> DeliverToSessionAsync(SessionEntry target, Element stanza);

    /// Hands a normal or chat message to the bare JID's most available resources (RFC 6121 §8.5.2.1.1), copies linked
    /// so that it is routed on once if every holder gives it back; false when none took it.
    ValueTask<bool> DeliverToBareAsync(Jid bare, Element stanza);

    /// A stanza for a full JID whose session was gone when it arrived (another node handed it over, and it ended
    /// meanwhile): handled as a failed delivery here would be, the offline spool or the RFC error.
    ValueTask UndeliveredAsync(Element stanza);

    /// Sends an IQ get/set from the server and waits for its result or error, or null on timeout.
    Task<Element?> RequestAsync(Element iq, TimeSpan timeout);

    /// Answers a stanza with its RFC 6120 §8.3 error (never for stanzas of type error).
    ValueTask BounceAsync(Element stanza, string condition, string? text = null, string? type = null);
}
