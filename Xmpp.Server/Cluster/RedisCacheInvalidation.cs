using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Xmpp.Server.Cluster;

/// ICacheInvalidation on one Redis pub/sub channel (xmpp:cache) shared by every node. A message is
/// "{sending node}\n{cache}\n{key}"; a node ignores its own, since the writer already updated its own cache.
///
/// Staleness window: from the writer's commit to the moment another node's subscriber has dropped the entry, i.e. one
/// PUBLISH (awaited by the writer, so the client's result leaves only after Redis has handed the message to every
/// subscribed node) plus that node's dispatch, well under a millisecond on a LAN. A stanza another node handles in
/// that window acts on the previous value, as it would had it arrived a moment before the write; XMPP orders nothing
/// across two different streams, so no client can tell. Loads that overlap a drop do not keep what they read (each
/// cache counts drops), so a dropped value cannot come back.
///
/// Reconnects: pub/sub is fire-and-forget, so messages published while this node was cut off from Redis are lost to
/// it. When the connection is restored every subscribed cache is dropped whole, and entries reload from PostgreSQL on
/// next use. A publish that fails (this node cut off) is logged; the others then miss it until their own reconnect
/// or the entry's next change, and this node cannot hold its lease meanwhile either.
public sealed class RedisCacheInvalidation(IConnectionMultiplexer redis, ClusterOptions options, ILogger<RedisCacheInvalidation> log)
    : Caching.ICacheInvalidation, IHostedService
{
    internal static readonly RedisChannel Channel = RedisChannel.Literal("xmpp:cache");

    private readonly string _node = options.NodeId;
    private readonly ConcurrentDictionary<string, Action<string?>[]> _drops = new(StringComparer.Ordinal);

    public bool Shared => true;

    /// Messages received from other nodes and acted on, and whole-cache drops after reconnects (for tests and metrics).
    public long Received => Interlocked.Read(ref _received);
    public long Flushes => Interlocked.Read(ref _flushes);

    private long _received, _flushes;

    public async ValueTask ChangedAsync(string cache, string key)
    {
        try
        {
            await redis.GetSubscriber().PublishAsync(Channel, _node + "\n" + cache + "\n" + key);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            log.LogWarning("Cache invalidation {Cache}/{Key} not published: {Error}", cache, key, e.Message);
        }
    }

    public void Subscribe(string cache, Action<string?> drop) =>
        _drops.AddOrUpdate(cache, [drop], (_, list) => [.. list, drop]);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (redis is ConnectionMultiplexer m) m.ConnectionRestored += OnConnectionRestored;
        await redis.GetSubscriber().SubscribeAsync(Channel, (_, message) => OnMessage(message));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (redis is ConnectionMultiplexer m) m.ConnectionRestored -= OnConnectionRestored;
        try { await redis.GetSubscriber().UnsubscribeAsync(Channel); }
        catch (Exception e) when (e is RedisException or TimeoutException) { }
    }

    private void OnMessage(RedisValue message)
    {
        var text = (string?)message;
        if (text is null) return;
        var parts = text.Split('\n', 3);
        if (parts.Length != 3 || parts[0] == _node) return;
        if (!_drops.TryGetValue(parts[1], out var drops)) return;
        Interlocked.Increment(ref _received);
        Run(drops, parts[2]);
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        // Both kinds matter: the subscription connection missed messages, the interactive one may have failed publishes.
        log.LogInformation("Redis connection restored ({Type}): dropping every coherent cache", e.ConnectionType);
        Interlocked.Increment(ref _flushes);
        foreach (var drops in _drops.Values) Run(drops, null);
    }

    private void Run(Action<string?>[] drops, string? key)
    {
        foreach (var drop in drops)
        {
            try { drop(key); }
            catch (Exception e) { log.LogError(e, "A cache drop failed for {Key}", key); }
        }
    }
}
