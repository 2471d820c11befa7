using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Sessions;

/// One bound resource as the router and other resources (or nodes) see it. Immutable: a change goes through
/// ISessionDirectory and produces a new entry in a new ResourceSet. Carbons: XEP-0280 enabled; CsiInactive: XEP-0352
/// said &lt;inactive/&gt;; BlocklistRequested: XEP-0191 §3.1 retrieved the blocklist, so it gets pushes; UserAgentId:
/// the XEP-0388 §4 user-agent id its client authenticated with; Directed: in a cluster, where it sent directed
/// availability (RFC 6121 §4.6), so whichever node outlives its node can tell them it is gone (null elsewhere).
public sealed record SessionEntry(
    Jid Jid,
    ISessionSink Sink,
    bool Available = false,
    int Priority = 0,
    Element? Presence = null,
    bool RosterRequested = false,
    bool Carbons = false,
    bool CsiInactive = false,
    bool BlocklistRequested = false,
    string? UserAgentId = null,
    IReadOnlyList<string>? Directed = null)
{
    /// RFC 6121 §8.5.2: only available resources with non-negative priority receive messages sent to the bare JID.
    public bool ReceivesBareMessages => Available && Priority >= 0;
}
