using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Cluster;
using Xmpp.Server.Modules.Muc;
using Xmpp.Storage;
using Xmpp.Storage.Postgres;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// Room hosting (issue 17, point 3) with two node buses on a private redis-server and one PostgreSQL database, each
/// node with its own connections as separate processes would have: who takes a room, and the epoch fence that keeps
/// a host that lost the room from writing it.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class RoomHostingTests
{
    private const string Room = "lobby@conference.example.com";
    private static readonly PostgresTestDatabase Database = new("rooms");
    private RedisInstance _redis = null!;
    private readonly List<IAsyncDisposable> _stop = [];

    [OneTimeSetUp]
    public async Task StartRedis() => _redis = await RedisInstance.StartAsync();

    [OneTimeTearDown]
    public void StopRedis() => _redis.Stop();

    [SetUp]
    public Task EmptyDatabase() => Database.ResetAsync();

    [TearDown]
    public async Task StopNodes()
    {
        foreach (var s in Enumerable.Reverse(_stop)) await s.DisposeAsync();
        _stop.Clear();
        await using var admin = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString + ",allowAdmin=true");
        await admin.GetServers()[0].FlushAllDatabasesAsync();
    }

    private sealed record Node(RedisNodeBus Bus, ClusterRoomHosting Hosting, PostgresStorage Storage, MucStore Store);

    private async Task<Node> NodeAsync(string id)
    {
        var options = new ClusterOptions { Enabled = true, Redis = _redis.ConnectionString, NodeId = id, LeaseSeconds = 2 };
        var connection = (ConnectionMultiplexer)ClusterServices.Connect(options, NullLogger.Instance);
        var bus = new RedisNodeBus(connection, options, NullLogger<RedisNodeBus>.Instance);
        await bus.StartAsync(CancellationToken.None);
        var storage = await PostgresStorage.OpenAsync(await Database.ConnectionStringAsync());
        var hosting = new ClusterRoomHosting(bus, connection, storage.RoomFence, NullLogger<ClusterRoomHosting>.Instance);
        _stop.Add(connection);
        _stop.Add(bus);
        _stop.Add(storage);
        return new Node(bus, hosting, storage, new MucStore(storage, hosting));
    }

    private static MucRoomRecord Record(string subject) => new() { Subject = subject };

    [Test]
    public async Task The_first_node_to_ask_takes_the_room_and_the_others_find_it_there()
    {
        var a = await NodeAsync("a");
        var b = await NodeAsync("b");
        await a.Bus.WatchOnceAsync();
        await b.Bus.WatchOnceAsync();

        var first = await a.Hosting.HostAsync(Room);
        Assert.That(first, Is.EqualTo(new RoomHost("a", 1, Local: true, Claimed: true)));
        Assert.That(await a.Hosting.HostAsync(Room), Is.EqualTo(new RoomHost("a", 1, Local: true, Claimed: false)), "cached");
        Assert.That(await b.Hosting.HostAsync(Room), Is.EqualTo(new RoomHost("a", 1, Local: false, Claimed: false)));
        Assert.That(b.Hosting.EpochOf(Room), Is.Null, "b does not host it, so it has no epoch to write with");
        Assert.That(a.Hosting.Taken + b.Hosting.Taken, Is.EqualTo(1));
    }

    [Test]
    public async Task A_host_that_lost_its_lease_has_its_writes_refused_after_another_node_took_the_room()
    {
        var a = await NodeAsync("a");
        var b = await NodeAsync("b");
        await a.Bus.WatchOnceAsync();
        await b.Bus.WatchOnceAsync();
        Assert.That((await a.Hosting.HostAsync(Room))!.Value.Local);
        await a.Store.SaveRoomAsync(Room, Record("by a, epoch 1"));
        await a.Store.AppendHistoryAsync(Room, DateTimeOffset.UtcNow, "alice", Message("one"), "s1");

        // a freezes (as under SIGSTOP): its lease runs out, b sees it down and takes the room with the next epoch.
        string? lost = null;
        a.Hosting.RoomsLost += r => lost = r ?? "all";
        a.Bus.SuspendForTest(TimeSpan.FromSeconds(4));
        Assert.That(await Wait.UntilAsync(() => !b.Bus.IsAlive("a"), TimeSpan.FromSeconds(6)), "b sees a down");
        var taken = await b.Hosting.HostAsync(Room);
        Assert.That(taken, Is.EqualTo(new RoomHost("b", 2, Local: true, Claimed: true)));
        Assert.That(await b.Store.LoadRoomAsync(Room), Has.Property("Subject").EqualTo("by a, epoch 1"), "b loads what a wrote");
        await b.Store.SaveRoomAsync(Room, Record("by b, epoch 2"));

        // a wakes up still believing it hosts the room with epoch 1. Straight at the fence (as if its own lease check
        // had not caught up yet): every kind of write with epoch 1 is refused in PostgreSQL.
        var fence = a.Storage.RoomFence;
        Assert.That(await fence.SetAsync(Room, 1, Room, "muc-room", "{\"Subject\":\"by a, stale\"}"u8.ToArray()), Is.False);
        Assert.That(await fence.AppendAsync(Room, 1, MucStore.Collection, DateTimeOffset.UtcNow, "alice", ElementWriter.ToBytes(Message("stale")), "s2"), Is.Null);
        Assert.That(await fence.DeleteAsync(Room, 1, Room, "muc-room"), Is.False);
        Assert.That(await fence.DeleteArchiveAsync(Room, 1, MucStore.Collection, Room), Is.False);
        // A moderation tombstone (XEP-0425) over the archived message: refused too, and the message stays as it was.
        var archived = (await a.Storage.Archive(MucStore.Collection).QueryAsync(new ArchiveQuery(Room, StanzaIds: ["s1"], Max: 1))).Records.Single();
        Assert.That(await fence.ReplaceArchiveAsync(Room, 1, MucStore.Collection, Room, archived.Id, ElementWriter.ToBytes(Message("stale tombstone"))), Is.Null);
        // And through the room store: a's lease is gone, so it has no epoch at all and refuses before PostgreSQL.
        Assert.That(await Wait.UntilAsync(() => lost is not null, TimeSpan.FromSeconds(5)), "a found it lost its lease and dropped its rooms");
        Assert.That(a.Hosting.EpochOf(Room), Is.Null);
        Assert.ThrowsAsync<RoomFencedException>(async () => await a.Store.SaveRoomAsync(Room, Record("by a, stale")));

        Assert.That(await b.Store.LoadRoomAsync(Room), Has.Property("Subject").EqualTo("by b, epoch 2"), "the new host's write stands");
        var history = await b.Store.LoadHistoryAsync(Room, 10);
        Assert.That(history.Select(h => h.Message.ChildText("body", Ns.Client)), Is.EqualTo(new[] { "one" }),
            "neither the stale append nor the stale tombstone is in the archive");
        Assert.That(await b.Store.ReplaceHistoryAsync(Room, archived.Id, Message("tombstone by b")), Is.True, "the current host's tombstone is written");
        Assert.That(await fence.SetAsync(Room, 2, Room, "muc-room", "{\"Subject\":\"epoch 2\"}"u8.ToArray()), Is.True, "the current epoch writes");
    }

    [Test]
    public async Task A_redis_that_lost_the_epoch_counter_still_gives_a_new_host_an_epoch_above_the_recorded_one()
    {
        var a = await NodeAsync("a");
        Assert.That((await a.Hosting.HostAsync(Room))!.Value.Epoch, Is.EqualTo(1));
        await a.Storage.RoomFence.ClaimAsync(Room, 7); // as if hosts came and went while Redis kept no data
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString))
        {
            await admin.GetDatabase().KeyDeleteAsync(ClusterRoomHosting.RoomKey(Room));
            await admin.GetDatabase().KeyDeleteAsync(ClusterRoomHosting.EpochKey(Room));
        }
        var b = await NodeAsync("b");
        var taken = await b.Hosting.HostAsync(Room);
        Assert.That(taken, Is.EqualTo(new RoomHost("b", 8, Local: true, Claimed: true)));
        Assert.That(await b.Storage.RoomFence.SetAsync(Room, 8, Room, "k", new byte[] { 1 }), Is.True);
    }

    private static Element Message(string body) =>
        new Element("message", Ns.Client).SetAttr("type", "groupchat").SetAttr("from", Room + "/alice")
            .Add(new Element("body", Ns.Client).SetText(body));
}
