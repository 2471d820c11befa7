using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Cluster;

/// Node-to-node traffic in a cluster (Xmpp:Cluster): one ordered channel per pair of nodes, carried by Redis. Absent on
/// a single node: nothing resolves it unless the cluster is configured.
public interface INodeBus
{
    /// This node's id (Xmpp:Cluster:NodeId).
    string LocalNode { get; }

    /// True while this node holds a live lease. After a pause longer than the lease (SIGSTOP, a frozen VM) it is false
    /// until the node has closed its sessions and registered again: nothing may act on the old lease meanwhile.
    bool HoldsLease { get; }

    /// The node holds a live lease as far as this node knows.
    bool IsAlive(string node);

    /// The node holds a live lease: as IsAlive, but a node this one has not seen yet (it came up since the last
    /// membership check) is looked up in Redis now; concurrent calls for one node share one read.
    ValueTask<bool> IsAliveNowAsync(string node);

    /// Queues a stanza for the session bound to fullJid on another node; that node hands it to the session (it is not
    /// routed again). Stanzas queued for one node arrive there in the order they were queued. For a node not seen
    /// yet the stanza is held while its lease is read, then sent, or routed again here as undeliverable when the node
    /// holds no lease. False when the node is known to hold none: the caller treats the session as gone.
    bool Deliver(string node, Jid fullJid, Element stanza);

    /// Queues a stanza for another node's router, as a stanza from inside the cluster (its from is already stamped and
    /// trusted): for a target that node hosts, such as a room. Same ordered channel as Deliver.
    void Route(string node, Element stanza);

    /// A request of a named kind to another node; the answer, or null when the node is gone or does not answer in time.
    Task<Element?> RequestAsync(string node, string kind, Element payload, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// A request whose handler may run more than once, asked again when no answer comes within attemptTimeout, at most
    /// attempts times, while the node is alive: the first answer, or null. unanswered(attempt) is called after each
    /// attempt that got no answer from a node still alive.
    async Task<Element?> RequestAgainAsync(string node, string kind, Element payload, TimeSpan attemptTimeout, int attempts,
        Action<int>? unanswered = null)
    {
        for (int attempt = 1; attempt <= attempts; attempt++)
        {
            if (await RequestAsync(node, kind, payload, attemptTimeout) is { } answer) return answer;
            if (!IsAlive(node)) return null;
            unanswered?.Invoke(attempt);
        }
        return null;
    }

    /// Answers requests of one kind from other nodes (registered at start; one handler per kind).
    void OnRequest(string kind, Func<string, Element, ValueTask<Element?>> handler);

    /// Raised once on every surviving node when another node's lease ends (it died, stopped, or lost the lease).
    event Action<string>? NodeDown;

    /// Raised on this node when it finds it lost its own lease, before it closes its sessions.
    event Action? LeaseLost;
}
