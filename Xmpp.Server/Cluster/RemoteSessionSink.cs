using System.Globalization;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster;

/// A session bound on another node, as the router and modules see it: stanzas go over the bus to that node, which
/// hands them to the session; ending it (a conflict, RFC 6120 §7.7.2.2, an account removed, an administrator's
/// disconnect) is asked of that node until it answers.
public sealed class RemoteSessionSink(INodeBus bus, string node, Jid jid, string? token = null, ILogger? log = null) : ISessionSink
{
    public const string CloseRequest = "session-close";

    // A close is asked again when no answer comes within this, at most CloseAttempts times: 10 s in all, about the
    // time a node that stopped answering takes to be declared down (its sessions then go with it).
    internal static readonly TimeSpan CloseAttemptTimeout = TimeSpan.FromSeconds(2);
    internal const int CloseAttempts = 5;

    public Jid Jid { get; } = jid;

    public string Node { get; } = node;

    /// The owner's registration (lease token) this entry was learnt under: a new registration starts without sessions.
    internal string? Token { get; } = token;

    // The version of the owner's record this entry was last set from (ClusterSessionDirectory.Apply).
    internal long Version { get; set; }

    public bool Send(Element stanza) => bus.Deliver(Node, Jid, stanza);

    /// The request names the session's incarnation: the owner's registration and the version of the newest record of
    /// it seen here. The owner ends only a session whose first record is no newer than that, so a request that arrives
    /// late, or again, never ends a newer session that bound the same full JID meanwhile; that makes it safe to repeat.
    public void Close(string streamErrorCondition, string? text = null)
    {
        var request = new Element("close", Ns.Cluster).SetAttr("jid", Jid.ToString()).SetAttr("condition", streamErrorCondition)
            .SetAttr("text", text).SetAttr("i", Token).SetAttr("v", Version.ToString(CultureInfo.InvariantCulture));
        // Any answer settles it: the owner ended that session, or holds none that old (it ended, or a newer one has the
        // full JID). No answer: the request or its answer was lost, or came too late; a node that is gone took its
        // sessions with it.
        _ = bus.RequestAgainAsync(Node, CloseRequest, request, CloseAttemptTimeout, CloseAttempts, attempt =>
            log?.LogWarning("Ending {Jid} on node {Node}: no answer to attempt {Attempt} of {Attempts}", Jid, Node, attempt, CloseAttempts));
    }

    public void Replace(string text) => Close(StreamErrors.Conflict, text);
}
