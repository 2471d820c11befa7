using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Cluster;

/// ICacheInvalidation across the cluster's nodes. The writer asks every node that holds a lease, over the node bus, to
/// drop the entry ("cache-drop" requests, in parallel) and waits for their answers (at most AckTimeout) before its own
/// client gets the result: a stanza another node handles after that sees the new value, e.g. a block acknowledged on
/// one node stops the next message another node routes (XEP-0191 §3.5). A node that does not answer in time is frozen
/// or dying: it loses its lease, and a node that registers again drops every cache whole (Registered). The same drop
/// is also published on one Redis pub/sub channel (xmpp:cache; "{node}\n{cache}\n{key}", a node ignores its own) for a
/// node that registered after the writer last read the membership. Loads that overlap a drop do not keep what they
/// read (each cache counts drops), so a dropped value cannot come back.
///
/// Reconnects: messages published while this node was cut off from Redis are lost to it. When the connection is
/// restored every subscribed cache is dropped whole, and entries reload from PostgreSQL on next use.
public sealed class RedisCacheInvalidation(IConnectionMultiplexer redis, RedisNodeBus bus, ClusterOptions options, ILogger<RedisCacheInvalidation> log)
    : Caching.ICacheInvalidation, IHostedService
{
    internal static readonly RedisChannel Channel = RedisChannel.Literal("xmpp:cache");
    internal const string DropKind = "cache-drop";
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(1);

    private readonly string _node = options.NodeId;
    private readonly ConcurrentDictionary<string, Action<string?>[]> _drops = new(StringComparer.Ordinal);

    public bool Shared => true;

    /// Messages received from other nodes and acted on, and whole-cache drops after reconnects (for tests and metrics).
    public long Received => Interlocked.Read(ref _received);
    public long Flushes => Interlocked.Read(ref _flushes);

    private long _received, _flushes;

    public async ValueTask ChangedAsync(string cache, string key)
    {
        var published = PublishAsync(cache, key);
        var nodes = bus.AliveNodes.Keys.ToArray();
        if (nodes.Length > 0)
        {
            var payload = new Element("drop", Ns.Cluster).SetAttr("cache", cache).SetAttr("key", key);
            var answers = await Task.WhenAll(nodes.Select(n => bus.RequestAsync(n, DropKind, payload, AckTimeout)));
            for (int i = 0; i < nodes.Length; i++)
                if (answers[i] is null)
                    log.LogWarning("Cache invalidation {Cache}/{Key}: node {Node} did not confirm within {Timeout} s", cache, key, nodes[i], AckTimeout.TotalSeconds);
        }
        await published;
    }

    private async Task PublishAsync(string cache, string key)
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

    private ValueTask<Element?> OnDropRequest(string from, Element payload)
    {
        if (payload.Attr("cache") is { } cache && payload.Attr("key") is { } key && _drops.TryGetValue(cache, out var drops))
        {
            Interlocked.Increment(ref _received);
            Run(drops, key);
        }
        return ValueTask.FromResult<Element?>(new Element("dropped", Ns.Cluster));
    }

    private ValueTask FlushAll()
    {
        Interlocked.Increment(ref _flushes);
        foreach (var drops in _drops.Values) Run(drops, null);
        return ValueTask.CompletedTask;
    }

    public void Subscribe(string cache, Action<string?> drop) =>
        _drops.AddOrUpdate(cache, [drop], (_, list) => [.. list, drop]);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (redis is ConnectionMultiplexer m) m.ConnectionRestored += OnConnectionRestored;
        bus.OnRequest(DropKind, OnDropRequest);
        // A node that lost its lease and registered again may have missed drops meanwhile.
        bus.Registered += FlushAll;
        await redis.GetSubscriber().SubscribeAsync(Channel, (_, message) => OnMessage(message));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (redis is ConnectionMultiplexer m) m.ConnectionRestored -= OnConnectionRestored;
        bus.Registered -= FlushAll;
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
