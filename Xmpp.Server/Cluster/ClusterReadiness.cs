using StackExchange.Redis;
using Xmpp.Server.Metrics;

namespace Xmpp.Server.Cluster;

/// GET /ready in a cluster: a node without Redis or without its lease must not get new clients from the load balancer.
public sealed class ClusterReadiness(IConnectionMultiplexer redis, RedisNodeBus bus) : IReadinessCheck
{
    public ValueTask<string?> ProblemAsync(CancellationToken cancellationToken) =>
        ValueTask.FromResult(!redis.IsConnected ? "redis unreachable" : !bus.HoldsLease ? "cluster lease lost" : null);
}
