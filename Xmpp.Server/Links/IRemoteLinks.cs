using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Links;

/// Where the router hands a stanza for a domain this server does not serve: a link to another server (s2s), later a
/// component or another node. Links only move stanzas; one they cannot deliver goes back to the router's bounce, which
/// answers it with the RFC 6120 §8.3.3 error, so nothing is lost silently.
public interface IRemoteLinks
{
    /// Takes a stanza whose 'to' is at a domain this server does not serve; 'from' is at one it does.
    ValueTask SendAsync(Element stanza, Jid from, Jid to);
}
