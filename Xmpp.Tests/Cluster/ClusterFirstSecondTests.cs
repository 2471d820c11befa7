using Xmpp.Protocol;
using Xmpp.Tests.Support;
using static Xmpp.Tests.Cluster.ClusterSteps;

namespace Xmpp.Tests.Cluster;

/// A node's first second (docs/cluster-seams.md): the other nodes' membership check sees a node that has just come up
/// only on its next pass, yet that node's sessions can be written to at once. Here n1's check runs only every ten
/// minutes, so n2 and n3 stay in their first second for n1 throughout, unless something that names them makes n1 read
/// their lease.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterFirstSecondTests : ClusterFixture
{

    protected override Task<ClusterNodes> StartAsync() =>
        ClusterNodes.StartWithLateWatcherAsync(0, "romeo", "juliet");

    [Test]
    public async Task A_message_to_a_user_on_a_node_not_yet_seen_by_the_senders_node_arrives_live_and_in_order()
    {
        await using var juliet = await Cluster.ConnectAsync(1, "juliet", "balcony");
        await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == juliet.Jid!.ToString(), TimeSpan.FromSeconds(10));
        await using var romeo = await Cluster.ConnectAsync(0, "romeo", "garden");
        await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == romeo.Jid!.ToString(), TimeSpan.FromSeconds(10));
        // Straight after the logins: RFC 6121 §8.5.2.1.1 (bare JID, to the available resource) and §8.5.3.1 (full JID).
        for (int i = 0; i < 5; i++) await romeo.SendAsync(Chat("juliet@localhost", "bare " + i));
        await romeo.SendAsync(Chat(juliet.Jid!.ToString(), "full"));
        var bodies = new List<string>();
        while (bodies.Count < 6 && await juliet.TryReceiveAsync(e => e.Name == "message" && Body(e) is not null, TimeSpan.FromSeconds(5)) is { } m)
            bodies.Add(Body(m)!);
        Assert.That(bodies, Is.EqualTo(new[] { "bare 0", "bare 1", "bare 2", "bare 3", "bare 4", "full" }), "delivered live, in order, not spooled");
        // n1 learnt of n2 from what named it (juliet's session record, a frame), never from its membership check.
        Assert.That(Cluster.Nodes[0].Process!.Output, Does.Contain("Cluster node n2 is up (its lease read at once)"));
        Assert.That(Cluster.Nodes[0].Process!.Output, Does.Not.Contain("Cluster node n2 is up (membership check)"));
    }
}
