using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Xmpp.Server.Caching;
using Xmpp.Server.Cluster;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// The single-node invalidation does nothing at no cost; the Redis one carries a change from one node to every other.
[TestFixture]
public sealed class LocalCacheInvalidationTests
{
    [Test]
    public void A_single_node_publishes_nothing_calls_no_one_and_allocates_nothing_per_write()
    {
        var invalidation = new LocalCacheInvalidation();
        int calls = 0;
        invalidation.Subscribe("roster", _ => calls++);
        Assert.That(invalidation.Shared, Is.False);
        // Warm up the JIT before measuring.
        for (int i = 0; i < 10; i++) _ = invalidation.ChangedAsync("roster", "alice");
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            var pending = invalidation.ChangedAsync("roster", "alice");
            if (!pending.IsCompletedSuccessfully) Assert.Fail("a single-node write waited for something");
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.Zero, "bytes allocated by 10,000 writes");
        Assert.That(calls, Is.Zero, "no callback runs on a single node");
    }

    [Test]
    public async Task A_single_node_server_registers_the_in_process_invalidation()
    {
        await using var server = await TestServer.StartAsync();
        Assert.That(server.Get<ICacheInvalidation>(), Is.InstanceOf<LocalCacheInvalidation>());
    }
}

[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class RedisCacheInvalidationTests
{
    private RedisInstance _redis = null!;
    private readonly List<(RedisCacheInvalidation Invalidation, RedisNodeBus Bus, ConnectionMultiplexer Connection)> _nodes = [];

    [OneTimeSetUp]
    public async Task StartRedis() => _redis = await RedisInstance.StartAsync();

    [OneTimeTearDown]
    public void StopRedis() => _redis.Stop();

    [TearDown]
    public async Task StopNodes()
    {
        foreach (var (invalidation, bus, connection) in _nodes)
        {
            await invalidation.StopAsync(CancellationToken.None);
            await bus.StopAsync(CancellationToken.None);
            await connection.DisposeAsync();
        }
        _nodes.Clear();
    }

    private async Task<RedisCacheInvalidation> NodeAsync(string id)
    {
        var options = new ClusterOptions { Enabled = true, Redis = _redis.ConnectionString, NodeId = id, LeaseSeconds = 3 };
        var connection = (ConnectionMultiplexer)ClusterServices.Connect(options, NullLogger.Instance);
        var bus = new RedisNodeBus(connection, options, NullLogger<RedisNodeBus>.Instance);
        var invalidation = new RedisCacheInvalidation(connection, bus, options, NullLogger<RedisCacheInvalidation>.Instance);
        await invalidation.StartAsync(CancellationToken.None);
        await bus.StartAsync(CancellationToken.None);
        _nodes.Add((invalidation, bus, connection));
        // Every node sees the others' leases (the membership check runs every second).
        foreach (var (_, other, _) in _nodes) await other.WatchOnceAsync();
        return invalidation;
    }

    private static async Task<bool> UntilAsync(Func<bool> condition, int ms = 5000)
    {
        for (int waited = 0; waited < ms; waited += 20)
        {
            if (condition()) return true;
            await Task.Delay(20);
        }
        return condition();
    }

    [Test]
    public async Task A_change_reaches_every_other_node_once_per_cache_and_not_the_writer()
    {
        var a = await NodeAsync("a");
        var b = await NodeAsync("b");
        var c = await NodeAsync("c");
        var seen = new ConcurrentQueue<string>();
        foreach (var (node, name) in new[] { (a, "a"), (b, "b"), (c, "c") })
        {
            node.Subscribe("roster", key => seen.Enqueue($"{name} roster {key}"));
            node.Subscribe("blocklist", key => seen.Enqueue($"{name} blocklist {key}"));
        }
        await a.ChangedAsync("roster", "alice");
        // The live nodes confirm their drop before ChangedAsync returns (the writer's client waits for it); the pub/sub
        // copy for nodes not yet seen may repeat it, which a drop does not mind.
        Assert.That(seen.Distinct(), Is.EquivalentTo(new[] { "b roster alice", "c roster alice" }), "dropped before the writer went on");
        await Task.Delay(200);
        Assert.That(seen.Distinct(), Is.EquivalentTo(new[] { "b roster alice", "c roster alice" }));
        Assert.That(a.Received, Is.Zero);
    }

    [Test]
    public async Task After_a_redis_restart_every_cache_is_dropped_whole_and_changes_flow_again()
    {
        var a = await NodeAsync("a");
        var b = await NodeAsync("b");
        var drops = new ConcurrentQueue<string?>();
        b.Subscribe("pep", key => drops.Enqueue(key));
        await _redis.RestartAsync(crash: true);
        // Messages published while b was cut off are lost to it, so it drops everything (key null) once back.
        Assert.That(await UntilAsync(() => drops.Contains(null), 15_000), Is.True, "whole-cache drop after the reconnect");
        Assert.That(b.Flushes, Is.GreaterThan(0));
        // The subscription is back: a change flows again (a few tries while a's connection also comes back).
        for (int i = 0; i < 50 && !drops.Contains("olga"); i++)
        {
            await a.ChangedAsync("pep", "olga");
            await Task.Delay(100);
        }
        Assert.That(drops, Does.Contain("olga"));
    }
}
