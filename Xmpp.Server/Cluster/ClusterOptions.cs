namespace Xmpp.Server.Cluster;

/// Cluster mode (Xmpp:Cluster): several nodes serve the same domains behind a TCP load balancer, with durable data in
/// PostgreSQL (Xmpp:Storage) and the shared transient state and node-to-node routing in Redis. Off by default: a single
/// node loads none of it.
public sealed class ClusterOptions
{
    public bool Enabled { get; set; }

    /// StackExchange.Redis configuration, e.g. "redis1:6379,password=...". Best given in the environment
    /// (XMPP__CLUSTER__REDIS); its password is never logged.
    public string Redis { get; set; } = "";

    /// This node's id, unique in the cluster; defaults to the host name and the process id.
    public string NodeId { get; set; } = "";

    /// How long a node's lease lives without renewal: within this time after a node dies (or freezes) the others remove
    /// its sessions and take over its rooms. Renewed every third of it.
    public int LeaseSeconds { get; set; } = 10;

    /// How often a node reads the member set and every member's lease: bounds, with LeaseSeconds, how fast a dead node
    /// is noticed. A node that has just come up is looked up at once when something names it (a frame from it, a
    /// session record of it), so it need not wait for this check to be delivered to.
    public int MembershipCheckMilliseconds { get; set; } = 1000;
}
