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
        ClusterNodes.StartWithStallableRedisLinkAsync(2, "romeo", "juliet");

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
}
