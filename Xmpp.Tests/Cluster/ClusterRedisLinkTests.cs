using System.Diagnostics;
using Xmpp.Protocol;
using Xmpp.Server.Cluster;
using Xmpp.Tests.Support;
using static Xmpp.Tests.Cluster.ClusterSteps;

namespace Xmpp.Tests.Cluster;

/// A node whose link to Redis stalls or breaks (docs/cluster-seams.md, "Lease renewal" and "Directory writes"): n3
/// reaches Redis through a StallingProxy, which holds what passes for a while or cuts the connections and drops it.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterRedisLinkTests : ClusterFixture
{
    protected override Task<ClusterNodes> StartAsync() =>
        ClusterNodes.StartWithStallableRedisLinkAsync(2, "romeo", "juliet", "rosa", "lena");

    private StallingProxy Link => Cluster.RedisLink!;

    /// What a Redis command carries when it names these keys one after the other (RESP bulk strings): a pattern that
    /// tells one of the node's commands from the others in the bytes the proxy sees.
    private static string Keys(params string[] keys) =>
        string.Join("\r\n", keys.Select((k, i) => i == 0 ? k : $"${k.Length}\r\n{k}")) + "\r\n";

    private async Task<TestClient> LogInAsync(int node, string user, string resource)
    {
        var c = await Cluster.ConnectAsync(node, user, resource);
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString(), TimeSpan.FromSeconds(10));
        return c;
    }

    private static int Count(string text, string part)
    {
        int n = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    [Test]
    public async Task A_node_whose_redis_answers_one_lease_renewal_too_late_keeps_its_lease_and_its_sessions()
    {
        await using var juliet = await LogInAsync(2, "juliet", "balcony");
        await using var romeo = await LogInAsync(0, "romeo", "garden");
        await UntilReachableAsync(romeo, juliet);
        var log = Cluster.Nodes[2].Process!;
        int failedBefore = Count(log.Output, "Cluster lease renewal failed");

        // The lease is 3 s, renewed every second; an attempt waits at most a second for its answer. From n3's next
        // renewal (the compare-token script names its lease key, then the member set), the link holds everything for
        // 1.5 s: that renewal gets no answer in time. Without a retry the next attempt would come a period after that
        // failure, two seconds after the last renewal that counted went out plus that one's second: the lease's end.
        await Link.StallOnAsync(Keys(RedisNodeBus.LeaseKey("n3"), RedisNodeBus.NodesKey), TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(5));
        var stalled = Stopwatch.StartNew();
        // Past the moment n3 would have given its lease up (2 s after the stall began), with some slack for its log.
        await Task.Delay(TimeSpan.FromSeconds(2.6));

        Assert.That(juliet.StreamEnded, Is.False, "juliet's session on n3 stays up");
        await romeo.SendAsync(Chat(juliet.Jid!.ToString(), "Still there, after the stall?"));
        var message = await juliet.TryReceiveAsync(e => e.Name == "message" && Body(e) == "Still there, after the stall?", TimeSpan.FromSeconds(5));
        Assert.That(message, Is.Not.Null, "routed from n1 to juliet on n3 after the stall");
        Assert.That(log.Output, Does.Not.Contain("lost its lease"));
        Assert.That(Cluster.Nodes[0].Process!.Output, Does.Not.Contain("Cluster node n3 is down"));
        Assert.That(Count(log.Output, "Cluster lease renewal failed") - failedBefore, Is.EqualTo(1), "exactly one renewal went unanswered in time");
        TestContext.Out.WriteLine($"message received {stalled.Elapsed.TotalSeconds:0.0} s after the stall began");
    }

    [Test]
    public async Task A_session_whose_directory_write_was_lost_with_the_redis_connection_is_written_again()
    {
        await using var rosa = await LogInAsync(0, "rosa", "office");
        var lena = Jid.Parse("lena@localhost/desk");
        // lena binds on n3 and sends no presence: the bind's write is the only one that tells Redis and the other nodes
        // of her session. The link holds that write (one script: n3's lease key, its session hash, lena's account
        // index) and everything after it, and at once breaks, dropping it: Redis never gets it, n3 sees it fail.
        var held = Link.StallOnAsync(Keys(RedisNodeBus.SessionsKey("n3"), ClusterSessionDirectory.AccountKey(lena.Bare)),
            Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(10));
        var connecting = Cluster.ConnectAsync(2, "lena", "desk", presence: false);
        await held;
        Link.Cut();
        await using var client = await connecting;

        Assert.That(await Wait.UntilAsync(() => Cluster.Nodes[2].Process!.Output.Contains("Session directory changes not written to Redis",
            StringComparison.Ordinal), TimeSpan.FromSeconds(5)), "n3 saw the write fail");
        var redis = await Cluster.RedisDatabaseAsync();
        Assert.That(await Wait.UntilAsync(async () => await redis.HashExistsAsync(RedisNodeBus.SessionsKey("n3"), lena.ToString()), TimeSpan.FromSeconds(5)),
            "n3 wrote lena's session again once its connection was back");
        // RFC 6121 §8.5.3.1: a message to the full JID of a connected resource is delivered to it; n1 knows the
        // session from the directory's event (or, at the latest, from lena's account index).
        await rosa.SendAsync(Chat(lena.ToString(), "Lena, are you there?"));
        Assert.That(await client.TryReceiveAsync(e => e.Name == "message" && Body(e) == "Lena, are you there?", TimeSpan.FromSeconds(5)),
            Is.Not.Null, "delivered live, not spooled for a session n1 never heard of");
    }

    /// The link holds everything while from sends body to to (n1 publishes the deliver frame, Redis hands it to n3's
    /// subscriber connection and the proxy holds it), then breaks and drops it: n3 never reads that frame.
    private async Task SendWhileTheLinkBreaksAsync(TestClient from, TestClient to, string body)
    {
        Link.Stall();
        await from.SendAsync(Chat(to.Jid!.ToString(), body));
        await Task.Delay(TimeSpan.FromMilliseconds(400));
        Link.Cut();
    }

    [Test]
    public async Task A_message_redis_handed_to_a_node_whose_connection_then_broke_is_sent_again_and_arrives_in_order()
    {
        await using var juliet = await LogInAsync(2, "juliet", "window");
        await using var romeo = await LogInAsync(0, "romeo", "street");
        await UntilReachableAsync(romeo, juliet);
        var n1 = Cluster.Nodes[0].Process!;
        // The link holds everything: n1 publishes the deliver frame, Redis hands it to n3's subscriber connection (so the
        // publish counts one receiver) and the proxy holds it; then the connections break and it is dropped. n3 never
        // reads it, and Redis pub/sub keeps nothing to read again.
        await SendWhileTheLinkBreaksAsync(romeo, juliet, "first words");
        // Once n3 is back, the next message's frame shows the gap: n3 asks n1 for the frames from the missing one on.
        // (Before, its acknowledgement also acknowledged the lost frame at n1, and "first words" was gone.)
        await Task.Delay(TimeSpan.FromMilliseconds(700));
        await romeo.SendAsync(Chat(juliet.Jid!.ToString(), "second words"));
        var first = await juliet.ReceiveAsync(e => e.Name == "message" && Body(e) is "first words" or "second words", TimeSpan.FromSeconds(10));
        Assert.That(Body(first), Is.EqualTo("first words"), "the lost frame came first: the frames are handled in order");
        await juliet.ReceiveAsync(e => e.Name == "message" && Body(e) == "second words", TimeSpan.FromSeconds(5));
        // Each once: what came twice over the bus (the frame already queued and its resend) was skipped.
        Assert.That(await juliet.TryReceiveAsync(e => e.Name == "message" && Body(e) is "first words" or "second words", TimeSpan.FromMilliseconds(800)),
            Is.Null, "a message was delivered twice");
        Assert.That(Cluster.Nodes[2].Process!.Output, Does.Not.Contain("lost its lease"));
        TestContext.Out.WriteLine(string.Join("\n", n1.Output.Split('\n').Where(l => l.Contains("Cluster", StringComparison.Ordinal)).TakeLast(5)));
    }

    [Test]
    public async Task The_last_message_lost_with_a_broken_redis_connection_is_sent_again_with_nothing_after_it()
    {
        await using var juliet = await LogInAsync(2, "juliet", "garden");
        await using var romeo = await LogInAsync(0, "romeo", "gate");
        await UntilReachableAsync(romeo, juliet);
        await SendWhileTheLinkBreaksAsync(romeo, juliet, "the only words");
        // No later frame shows n3 the gap: n1, without an acknowledgement for 2 s, names its last frame, and n3 asks for it.
        var message = await juliet.TryReceiveAsync(e => e.Name == "message" && Body(e) == "the only words", TimeSpan.FromSeconds(8));
        Assert.That(message, Is.Not.Null, "the lost frame was never sent again");
        Assert.That(await juliet.TryReceiveAsync(e => e.Name == "message" && Body(e) == "the only words", TimeSpan.FromMilliseconds(800)), Is.Null,
            "delivered twice");
    }
}
