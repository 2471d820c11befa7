using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Cluster;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// The node bus and node leases against a real private redis-server: each bus has its own connection, as separate
/// nodes would.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class RedisNodeBusTests
{
    private RedisInstance _redis = null!;
    private readonly List<(RedisNodeBus Bus, ConnectionMultiplexer Connection)> _nodes = [];

    [OneTimeSetUp]
    public async Task StartRedis() => _redis = await RedisInstance.StartAsync();

    [OneTimeTearDown]
    public void StopRedis() => _redis.Stop();

    [TearDown]
    public async Task StopNodes()
    {
        foreach (var (bus, connection) in _nodes)
        {
            await bus.StopAsync(CancellationToken.None);
            await connection.DisposeAsync();
        }
        _nodes.Clear();
        await using var admin = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString + ",allowAdmin=true");
        await admin.GetServers()[0].FlushAllDatabasesAsync();
    }

    private async Task<RedisNodeBus> NodeAsync(string id, int leaseSeconds = 3, Action<RedisNodeBus>? before = null, int membershipCheckMs = 1000)
    {
        var options = new ClusterOptions
        {
            Enabled = true, Redis = _redis.ConnectionString, NodeId = id, LeaseSeconds = leaseSeconds, MembershipCheckMilliseconds = membershipCheckMs,
        };
        var connection = (ConnectionMultiplexer)ClusterServices.Connect(options, NullLogger.Instance);
        var bus = new RedisNodeBus(connection, options, NullLogger<RedisNodeBus>.Instance);
        before?.Invoke(bus);
        await bus.StartAsync(CancellationToken.None);
        _nodes.Add((bus, connection));
        return bus;
    }

    private static Element Message(int n) =>
        new Element("message", Ns.Client).SetAttr("from", "a@example.com/x").SetAttr("to", "b@example.com/y")
            .Add(new Element("body", Ns.Client).AddText($"m{n} <&> ü"));

    private static async Task SeeEachOther(params RedisNodeBus[] buses)
    {
        foreach (var b in buses) await b.WatchOnceAsync();
        foreach (var b in buses)
            foreach (var other in buses)
                if (other != b) Assert.That(b.IsAlive(other.LocalNode), $"{b.LocalNode} sees {other.LocalNode}");
    }

    [Test]
    public async Task Ten_thousand_frames_to_one_node_arrive_in_the_order_they_were_queued()
    {
        var received = new ConcurrentQueue<(string From, string To, string Body)>();
        var a = await NodeAsync("a");
        var b = await NodeAsync("b", before: bus => bus.DeliverHandler = (from, to, stanza) =>
        {
            received.Enqueue((from, to.ToString(), stanza.ChildText("body", Ns.Client) ?? ""));
            return ValueTask.CompletedTask;
        });
        await SeeEachOther(a, b);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < 10_000; i++) a.Deliver("b", Jid.Parse("b@example.com/y"), Message(i));
        Assert.That(await Wait.UntilAsync(() => received.Count >= 10_000, TimeSpan.FromSeconds(30)), $"{received.Count} of 10000 arrived");
        TestContext.Out.WriteLine($"10,000 frames in {watch.ElapsedMilliseconds} ms, {a.Batches} publishes");
        Assert.That(a.FramesSent, Is.EqualTo(10_000));
        Assert.That(a.Batches, Is.LessThan(2_000), "frames queued together go out in one publish");
        var list = received.ToArray();
        Assert.That(list, Has.Length.EqualTo(10_000));
        for (int i = 0; i < list.Length; i++)
        {
            Assert.That(list[i].Body, Is.EqualTo($"m{i} <&> ü"), $"frame {i}");
            Assert.That(list[i].From, Is.EqualTo("a"));
            Assert.That(list[i].To, Is.EqualTo("b@example.com/y"));
        }
    }

    [Test]
    public async Task A_request_is_answered_and_one_to_a_silent_or_unknown_node_gives_null()
    {
        var a = await NodeAsync("a");
        var b = await NodeAsync("b", before: bus =>
        {
            bus.OnRequest("echo", (from, payload) =>
                ValueTask.FromResult<Element?>(new Element("echoed", Ns.Cluster).SetAttr("by", "b").SetAttr("for", from).Add(payload)));
            bus.OnRequest("slow", async (_, _) =>
            {
                await Task.Delay(2000);
                return new Element("late", Ns.Cluster);
            });
        });
        await SeeEachOther(a, b);
        var answer = await a.RequestAsync("b", "echo", new Element("ping", "urn:test").SetAttr("n", "7"), TimeSpan.FromSeconds(5));
        Assert.That(answer, Is.Not.Null);
        Assert.That(answer!.Name, Is.EqualTo("echoed"));
        Assert.That(answer.Attr("for"), Is.EqualTo("a"));
        Assert.That(answer.Child("ping", "urn:test")?.Attr("n"), Is.EqualTo("7"));
        var watch = Stopwatch.StartNew();
        Assert.That(await a.RequestAsync("b", "slow", new Element("x", "urn:test"), TimeSpan.FromMilliseconds(300)), Is.Null);
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1.5)), "the timeout ends the wait");
        Assert.That(await a.RequestAsync("nobody", "echo", new Element("x", "urn:test"), TimeSpan.FromSeconds(1)), Is.Null);
        Assert.That(await a.RequestAsync("b", "unknown-kind", new Element("x", "urn:test"), TimeSpan.FromSeconds(2)), Is.Null,
            "a kind without a handler is answered empty");
    }

    [Test]
    public async Task A_route_frame_reaches_the_other_nodes_router_in_order_with_deliveries()
    {
        var seen = new ConcurrentQueue<string>();
        var a = await NodeAsync("a");
        var b = await NodeAsync("b", before: bus =>
        {
            bus.DeliverHandler = (_, _, s) => { seen.Enqueue("d:" + s.ChildText("body", Ns.Client)); return ValueTask.CompletedTask; };
            bus.RouteHandler = (from, s) => { seen.Enqueue($"r:{from}:" + s.ChildText("body", Ns.Client)); return ValueTask.CompletedTask; };
        });
        await SeeEachOther(a, b);
        for (int i = 0; i < 100; i++)
        {
            if (i % 2 == 0) a.Route("b", Message(i));
            else a.Deliver("b", Jid.Parse("b@example.com/y"), Message(i));
        }
        Assert.That(await Wait.UntilAsync(() => seen.Count >= 100));
        var list = seen.ToArray();
        for (int i = 0; i < 100; i++)
            Assert.That(list[i], Is.EqualTo(i % 2 == 0 ? $"r:a:m{i} <&> ü" : $"d:m{i} <&> ü"));
    }

    [Test]
    public async Task A_node_not_yet_seen_is_looked_up_at_once_delivered_to_in_order_and_one_without_a_lease_gets_nothing()
    {
        // a's membership check runs every ten minutes: b, started after it, is in its first second for the whole test.
        var received = new ConcurrentQueue<string>();
        var rerouted = new ConcurrentQueue<string>();
        var a = await NodeAsync("a", membershipCheckMs: 600_000, before: bus => bus.UnhandledHandler = (node, frames) =>
        {
            foreach (var (kind, _, stanza) in frames) rerouted.Enqueue($"{node}:{kind}:{stanza.ChildText("body", Ns.Client)}");
            return ValueTask.CompletedTask;
        });
        var b = await NodeAsync("b", before: bus =>
        {
            bus.DeliverHandler = (_, _, s) => { received.Enqueue("d:" + s.ChildText("body", Ns.Client)); return ValueTask.CompletedTask; };
            bus.RouteHandler = (_, s) => { received.Enqueue("r:" + s.ChildText("body", Ns.Client)); return ValueTask.CompletedTask; };
        });
        Assert.That(a.IsAlive("b"), Is.False, "a has not seen b");
        for (int i = 0; i < 200; i++)
        {
            if (i % 10 == 0) a.Route("b", Message(i));
            else Assert.That(a.Deliver("b", Jid.Parse("b@example.com/y"), Message(i)), "accepted while b's lease is read");
        }
        Assert.That(await Wait.UntilAsync(() => received.Count >= 200, TimeSpan.FromSeconds(5)), $"{received.Count} of 200 arrived");
        Assert.That(received.ToArray(), Is.EqualTo(Enumerable.Range(0, 200).Select(i => (i % 10 == 0 ? "r:" : "d:") + $"m{i} <&> ü")), "in order");
        Assert.That(a.IsAlive("b"), "b is up for a now");
        Assert.That(a.FirstSeen, Is.EqualTo((1L, 1L)), "the burst cost one read of b's lease");

        // A node named without a lease (gone before a saw it): what was held for it comes back to a's router.
        for (int i = 0; i < 3; i++) a.Deliver("ghost", Jid.Parse("g@example.com/z"), Message(i));
        Assert.That(await Wait.UntilAsync(() => rerouted.Count >= 3, TimeSpan.FromSeconds(5)));
        Assert.That(rerouted.ToArray(), Is.EqualTo(new[] { "ghost:d:m0 <&> ü", "ghost:d:m1 <&> ü", "ghost:d:m2 <&> ü" }));
        Assert.That(a.Deliver("ghost", Jid.Parse("g@example.com/z"), Message(3)), Is.False, "known to hold no lease: the session is as good as gone");
        Assert.That(await a.IsAliveNowAsync("ghost"), Is.False);
    }

    [Test]
    public async Task A_batch_that_breaks_the_parser_limits_is_refused_and_the_channel_keeps_working()
    {
        var bodies = new ConcurrentQueue<string>();
        // a's own membership check stays out of the way: if it noticed b's lease gone first, it would send b nothing
        // (seen in CI under load), and the frame must reach b while b is fenced.
        var a = await NodeAsync("a", membershipCheckMs: 600_000);
        var b = await NodeAsync("b", before: bus => bus.DeliverHandler = (_, _, s) =>
        {
            bodies.Enqueue(s.ChildText("body", Ns.Client) ?? "");
            return ValueTask.CompletedTask;
        });
        await SeeEachOther(a, b);
        await using var raw = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
        var deep = string.Concat(Enumerable.Repeat("<x>", 200)) + string.Concat(Enumerable.Repeat("</x>", 200));
        await raw.GetSubscriber().PublishAsync(RedisChannel.Literal("xmpp:node:b"),
            $"<f xmlns='{Ns.Cluster}' k='d' n='a' t='b@example.com/y'><message xmlns='jabber:client'>{deep}</message></f>");
        await raw.GetSubscriber().PublishAsync(RedisChannel.Literal("xmpp:node:b"), "<f xmlns='urn:other' k='d'><!DOCTYPE x></f>");
        a.Deliver("b", Jid.Parse("b@example.com/y"), Message(1));
        Assert.That(await Wait.UntilAsync(() => bodies.Count >= 1));
        await Task.Delay(200);
        Assert.That(bodies, Is.EqualTo(new[] { "m1 <&> ü" }));
    }

    [Test]
    public async Task A_frozen_node_loses_its_lease_the_others_see_it_down_and_it_registers_again_with_a_new_token()
    {
        var downAt = new ConcurrentDictionary<string, long>();
        int lost = 0;
        var a = await NodeAsync("a", before: bus => bus.NodeDown += n => downAt.TryAdd(n, Stopwatch.GetTimestamp()));
        var c = await NodeAsync("c", before: bus => bus.NodeDown += n => downAt.TryAdd("c saw " + n, Stopwatch.GetTimestamp()));
        var b = await NodeAsync("b", before: bus => bus.LeaseLost += () => Interlocked.Increment(ref lost));
        var cleaners = new ConcurrentBag<string>();
        a.NodeDownCleanup += (n, _, won) => { if (won) cleaners.Add("a"); return ValueTask.CompletedTask; };
        c.NodeDownCleanup += (n, _, won) => { if (won) cleaners.Add("c"); return ValueTask.CompletedTask; };
        await SeeEachOther(a, b, c);
        var firstToken = b.Token;
        await using var raw = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
        await raw.GetDatabase().HashSetAsync(RedisNodeBus.SessionsKey("b"), "x@example.com/r", "<e/>");

        // The freeze: b renews nothing for 6 s (twice the lease); its sockets stay open.
        b.SuspendForTest(TimeSpan.FromSeconds(6));
        var frozenAt = Stopwatch.GetTimestamp();
        Assert.That(await Wait.UntilAsync(() => downAt.ContainsKey("b") && downAt.ContainsKey("c saw b"), TimeSpan.FromSeconds(7)),
            "a and c saw b down");
        var detection = Stopwatch.GetElapsedTime(frozenAt, downAt["b"]);
        TestContext.Out.WriteLine($"node down seen after {detection.TotalSeconds:0.0} s (lease 3 s; renewed up to 1 s before the freeze)");
        Assert.That(detection, Is.LessThan(TimeSpan.FromSeconds(3 + 2)));
        Assert.That(b.HoldsLease, Is.False, "the frozen node's own clock says its lease is over");
        Assert.That(cleaners, Has.Count.EqualTo(1), "one survivor cleans up");
        Assert.That(await raw.GetDatabase().KeyExistsAsync(RedisNodeBus.SessionsKey("b")), Is.False, "its session records are gone");

        Assert.That(await Wait.UntilAsync(() => b.HoldsLease, TimeSpan.FromSeconds(8)), "b registered again after the pause");
        Assert.That(lost, Is.EqualTo(1));
        Assert.That(b.Token, Is.Not.EqualTo(firstToken));
        Assert.That(await Wait.UntilAsync(() => a.IsAlive("b") && c.IsAlive("b"), TimeSpan.FromSeconds(3)), "the others see it up again");
    }

    [Test]
    public async Task Frames_that_arrive_while_the_lease_is_lost_are_not_acted_on()
    {
        var bodies = new ConcurrentQueue<string>();
        // a's own membership check stays out of the way: if it noticed b's lease gone first, it would send b nothing
        // (seen in CI under load), and the frame must reach b while b is fenced.
        var a = await NodeAsync("a", membershipCheckMs: 600_000);
        var b = await NodeAsync("b", before: bus => bus.DeliverHandler = (_, _, s) =>
        {
            bodies.Enqueue(s.ChildText("body", Ns.Client) ?? "");
            return ValueTask.CompletedTask;
        });
        await SeeEachOther(a, b);
        b.SuspendForTest(TimeSpan.FromSeconds(5));
        Assert.That(await Wait.UntilAsync(() => !b.HoldsLease, TimeSpan.FromSeconds(5)));
        a.Deliver("b", Jid.Parse("b@example.com/y"), Message(1)); // queued before a noticed
        Assert.That(await Wait.UntilAsync(() => b.Fenced >= 1, TimeSpan.FromSeconds(3)), "refused while fenced");
        Assert.That(bodies, Is.Empty);
    }

    [Test]
    public async Task A_clean_stop_hands_the_lease_back_so_the_others_see_the_node_down_within_a_second_or_two()
    {
        var down = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var a = await NodeAsync("a", leaseSeconds: 30, before: bus => bus.NodeDown += n => { if (n == "b") down.TrySetResult(); });
        var b = await NodeAsync("b", leaseSeconds: 30);
        await SeeEachOther(a, b);
        await b.StopAsync(CancellationToken.None);
        Assert.That(await Task.WhenAny(down.Task, Task.Delay(3000)), Is.SameAs(down.Task));
    }

    [Test]
    public async Task After_redis_restarts_without_its_data_the_nodes_register_again_and_frames_flow()
    {
        var bodies = new ConcurrentQueue<string>();
        int restored = 0;
        var a = await NodeAsync("a");
        var b = await NodeAsync("b", before: bus =>
        {
            bus.DeliverHandler = (_, _, s) => { bodies.Enqueue(s.ChildText("body", Ns.Client) ?? ""); return ValueTask.CompletedTask; };
            bus.Restored += () => { Interlocked.Increment(ref restored); return ValueTask.CompletedTask; };
        });
        await SeeEachOther(a, b);
        await _redis.RestartAsync();
        await using var raw = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
        Assert.That(await Wait.UntilAsync(async () =>
            await raw.GetDatabase().KeyExistsAsync(RedisNodeBus.LeaseKey("a")) && await raw.GetDatabase().KeyExistsAsync(RedisNodeBus.LeaseKey("b"))
            && (await raw.GetDatabase().SetMembersAsync(RedisNodeBus.NodesKey)).Length == 2, TimeSpan.FromSeconds(10)),
            "both leases and the member set are back");
        Assert.That(a.HoldsLease && b.HoldsLease, "a short outage keeps the leases");
        Assert.That(restored, Is.GreaterThanOrEqualTo(1));
        Assert.That(await Wait.UntilAsync(async () =>
        {
            a.Deliver("b", Jid.Parse("b@example.com/y"), Message(bodies.Count));
            await Task.Delay(100);
            return !bodies.IsEmpty && a.IsAlive("b");
        }, TimeSpan.FromSeconds(10)), "frames flow again");
    }

    [Test]
    public async Task Readiness_reports_a_lost_lease_and_an_unreachable_redis()
    {
        var b = await NodeAsync("b");
        var ready = new ClusterReadiness(_nodes[^1].Connection, b);
        Assert.That(await ready.ProblemAsync(CancellationToken.None), Is.Null);
        b.SuspendForTest(TimeSpan.FromSeconds(4));
        Assert.That(await Wait.UntilAsync(() => !b.HoldsLease, TimeSpan.FromSeconds(5)));
        Assert.That(await ready.ProblemAsync(CancellationToken.None), Is.EqualTo("cluster lease lost"));
        var nowhere = new ClusterOptions { Enabled = true, Redis = $"127.0.0.1:{TestServer.FreePort()},abortConnect=false", NodeId = "x", LeaseSeconds = 3 };
        await using var dead = (ConnectionMultiplexer)ClusterServices.Connect(nowhere, NullLogger.Instance);
        Assert.That(await new ClusterReadiness(dead, b).ProblemAsync(CancellationToken.None), Is.EqualTo("redis unreachable"));
    }
}
