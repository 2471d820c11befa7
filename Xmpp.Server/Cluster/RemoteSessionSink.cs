using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster;

/// A session bound on another node, as the router and modules see it: stanzas go over the bus to that node, which
/// hands them to the session; ending it (a conflict, RFC 6120 §7.7.2.2) is asked of that node.
public sealed class RemoteSessionSink(INodeBus bus, string node, Jid jid) : ISessionSink
{
    public const string CloseRequest = "session-close";

    public Jid Jid { get; } = jid;

    public string Node { get; } = node;

    // The version of the owner's record this entry was last set from (ClusterSessionDirectory.Apply).
    internal long Version { get; set; }

    public bool Send(Element stanza) => bus.Deliver(Node, Jid, stanza);

    public void Close(string streamErrorCondition, string? text = null)
    {
        var request = new Element("close", Ns.Cluster).SetAttr("jid", Jid.ToString()).SetAttr("condition", streamErrorCondition).SetAttr("text", text);
        _ = bus.RequestAsync(Node, CloseRequest, request, TimeSpan.FromSeconds(10));
    }

    public void Replace(string text) => Close(StreamErrors.Conflict, text);
}
