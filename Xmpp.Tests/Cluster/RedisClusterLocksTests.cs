using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Xmpp.Server.Cluster;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// The cluster lock (the offline drain's, docs/cluster-seams.md) against a real private redis-server, with each holder on
/// its own connection as separate nodes would be, and a short time to live so expiry is seen in under a second.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class RedisClusterLocksTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromMilliseconds(600);
    private RedisInstance _redis = null!;
    private readonly List<ConnectionMultiplexer> _connections = [];

    [OneTimeSetUp]
    public async Task StartRedis() => _redis = await RedisInstance.StartAsync();

    [OneTimeTearDown]
    public void StopRedis() => _redis.Stop();

    [TearDown]
    public async Task CloseConnections()
    {
        _redis.Freeze(false);
        foreach (var c in _connections) await c.DisposeAsync();
        _connections.Clear();
    }

    private async Task<(RedisClusterLocks Locks, IDatabase Db)> NodeAsync()
    {
        var connection = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
        _connections.Add(connection);
        return (new RedisClusterLocks(connection, NullLogger<RedisClusterLocks>.Instance, Ttl), connection.GetDatabase());
    }

    [Test]
    public async Task A_second_node_gets_the_lock_only_once_the_first_releases_it()
    {
        var (n1, _) = await NodeAsync();
        var (n2, _) = await NodeAsync();
        var first = await n1.AcquireAsync("offline:a", TimeSpan.FromSeconds(1));
        Assert.That(first, Is.Not.Null);
        var second = n2.AcquireAsync("offline:a", TimeSpan.FromSeconds(5)).AsTask();
        // Held across several renewals (every 200 ms): the waiter keeps waiting.
        await Task.Delay(Ttl * 2);
        Assert.That(second.IsCompleted, Is.False, "the lock is the first holder's while it renews it");
        Assert.That(first!.Held, Is.True);
        var released = Stopwatch.StartNew();
        await first.DisposeAsync();
        await using var got = await second;
        Assert.That(got, Is.Not.Null);
        Assert.That(released.Elapsed, Is.LessThan(TimeSpan.FromMilliseconds(550)), "the waiter's back-off stays short (at most 200 ms between tries)");
        Assert.That(await n1.AcquireAsync("offline:a", TimeSpan.FromMilliseconds(100)), Is.Null, "and now it is the second's");
    }

    [Test]
    public async Task A_lock_whose_holder_died_is_had_once_its_time_to_live_has_passed()
    {
        var (n2, db) = await NodeAsync();
        // A node that took the lock and died: nobody renews or releases it.
        await db.StringSetAsync(RedisClusterLocks.Key("offline:b"), "dead-node", Ttl, When.NotExists);
        var waited = Stopwatch.StartNew();
        await using var got = await n2.AcquireAsync("offline:b", TimeSpan.FromSeconds(5));
        Assert.That(got, Is.Not.Null);
        Assert.That(waited.Elapsed, Is.LessThan(Ttl + TimeSpan.FromMilliseconds(600)), "blocked for at most the time to live (and one back-off step)");
    }

    [Test]
    public async Task A_holder_whose_lock_was_taken_over_sees_it_lost_and_its_release_leaves_the_new_holders_lock()
    {
        var (n1, db) = await NodeAsync();
        var held = await n1.AcquireAsync("offline:c", TimeSpan.FromSeconds(1));
        Assert.That(held!.Held, Is.True);
        // As if it had expired under a paused holder and another node had taken it.
        await db.StringSetAsync(RedisClusterLocks.Key("offline:c"), "other-node", TimeSpan.FromSeconds(30));
        var deadline = DateTime.UtcNow + Ttl * 2;
        while (held.Held && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.That(held.Held, Is.False, "the next renewal finds another token");
        await held.DisposeAsync();
        Assert.That((string?)await db.StringGetAsync(RedisClusterLocks.Key("offline:c")), Is.EqualTo("other-node"), "compare-and-delete");
    }

    [Test]
    public async Task A_holder_that_cannot_renew_stops_trusting_the_lock_within_its_time_to_live()
    {
        var (n1, _) = await NodeAsync();
        var held = await n1.AcquireAsync("offline:d", TimeSpan.FromSeconds(1));
        Assert.That(held!.Held, Is.True);
        // Redis answers nothing (frozen): renewals get no answer, and the lock may expire there meanwhile.
        _redis.Freeze(true);
        var frozen = Stopwatch.StartNew();
        while (held.Held && frozen.Elapsed < Ttl * 3) await Task.Delay(20);
        Assert.That(held.Held, Is.False);
        Assert.That(frozen.Elapsed, Is.LessThanOrEqualTo(Ttl + TimeSpan.FromMilliseconds(300)), "no later than the time to live");
        _redis.Freeze(false);
        await held.DisposeAsync();
    }
}
