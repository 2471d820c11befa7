using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Sessions;

/// One bound resource as the router sees it. Immutable: a change produces a new entry in a new ResourceSet.
public sealed record SessionEntry(
    Jid Jid,
    ISessionSink Sink,
    bool Available = false,
    int Priority = 0,
    Element? Presence = null,
    bool RosterRequested = false)
{
    /// RFC 6121 §8.5.2: only available resources with non-negative priority receive messages sent to the bare JID.
    public bool ReceivesBareMessages => Available && Priority >= 0;
}
