using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Server.Hosting;
using Xmpp.Server.Metrics;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster;

/// Registers cluster mode (Xmpp:Cluster:Enabled): the Redis connection, the node bus with its lease, the cluster
/// session directory, cache invalidation and the readiness check. Not called on a single node, which loads none of it.
public static class ClusterServices
{
    public static IEnumerable<string> Validate(XmppServerOptions o)
    {
        var c = o.Cluster;
        if (!c.Enabled) yield break;
        if (!o.Storage.IsPostgreSql)
            yield return "Xmpp:Cluster: cluster mode needs Xmpp:Storage:Provider postgresql (every node shares one database).";
        if (string.IsNullOrWhiteSpace(c.Redis))
            yield return "Xmpp:Cluster:Redis must give the Redis server (e.g. \"redis1:6379,password=...\").";
        else if (RedisConfigurationError(c.Redis) is { } error)
            yield return $"Xmpp:Cluster:Redis is not a valid StackExchange.Redis configuration ({error}).";
        if (c.LeaseSeconds is < 2 or > 300) yield return $"Xmpp:Cluster:LeaseSeconds: {c.LeaseSeconds} is out of range (2-300).";
        if (c.MembershipCheckMilliseconds is < 100 or > 600_000)
            yield return $"Xmpp:Cluster:MembershipCheckMilliseconds: {c.MembershipCheckMilliseconds} is out of range (100-600000).";
        if (c.NodeId.Length > 100 || c.NodeId.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch)))
            yield return "Xmpp:Cluster:NodeId must be at most 100 characters, without spaces.";
    }

    // Its own method, not inlined: compiling Validate must not load the Redis client on a single node.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string? RedisConfigurationError(string configuration)
    {
        try
        {
            ConfigurationOptions.Parse(configuration);
            return null;
        }
        catch (ArgumentException e) { return e.Message; }
    }

    /// The node id: the configured one, or the host name and the process id.
    public static string NodeId(ClusterOptions c) =>
        c.NodeId.Length > 0 ? c.NodeId : $"{Environment.MachineName}-{Environment.ProcessId}";

    public static void Add(IServiceCollection services, XmppServerOptions options)
    {
        var c = options.Cluster;
        if (c.NodeId.Length == 0) c.NodeId = NodeId(c);
        services.AddSingleton(c);
        services.AddSingleton<IConnectionMultiplexer>(sp => Connect(c, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Xmpp.Cluster")));
        services.AddSingleton<RedisNodeBus>();
        services.AddSingleton<INodeBus>(sp => sp.GetRequiredService<RedisNodeBus>());
        services.AddSingleton<ClusterSessionDirectory>();
        services.AddSingleton<ISessionDirectory>(sp => sp.GetRequiredService<ClusterSessionDirectory>());
        // Subscribed before any listener starts, so no cache is filled before its invalidations can arrive.
        services.AddSingleton<RedisCacheInvalidation>();
        services.AddSingleton<Caching.ICacheInvalidation>(sp => sp.GetRequiredService<RedisCacheInvalidation>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisCacheInvalidation>());
        // Started in this order: the links set the bus's handlers before the bus subscribes and registers.
        services.AddHostedService<ClusterLinks>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisNodeBus>());
        services.AddSingleton<IReadinessCheck, ClusterReadiness>();
        services.AddSingleton(sp => new RedisClusterLocks(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<ILogger<RedisClusterLocks>>()));
        services.AddSingleton<IClusterLocks>(sp => sp.GetRequiredService<RedisClusterLocks>());
    }

    public static IConnectionMultiplexer Connect(ClusterOptions c, ILogger log)
    {
        var config = ConfigurationOptions.Parse(c.Redis);
        config.AbortOnConnectFail = false;
        config.ClientName = "xmppd-" + NodeId(c);
        // Commands and reconnects on the scale of the lease: a Redis that is gone must be noticed well within it.
        int leaseMs = c.LeaseSeconds * 1000;
        config.AsyncTimeout = Math.Max(1000, leaseMs / 3);
        config.SyncTimeout = Math.Max(1000, leaseMs / 3);
        config.ConnectTimeout = Math.Max(1000, leaseMs / 3);
        config.ReconnectRetryPolicy = new LinearRetry(250);
        var redis = ConnectionMultiplexer.Connect(config);
        redis.ConnectionFailed += (_, e) => log.LogWarning("Redis connection failed ({Type}): {Failure}", e.ConnectionType, e.FailureType);
        return redis;
    }
}
