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
}
