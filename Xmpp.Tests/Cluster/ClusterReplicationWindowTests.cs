using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;
using static Xmpp.Tests.Cluster.ClusterSteps;

namespace Xmpp.Tests.Cluster;

/// The directory's replication window (docs/cluster-seams.md): a node learns of another node's sessions from Redis
/// events, a moment after they bind. Two users who log in on different nodes and at once write to each other must
/// get what they wrote live, never through the offline spool or a subscription request stored until the next login.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterReplicationWindowTests
{
    private const int Rounds = 15;

    private ClusterNodes _cluster = null!;

    // Node n1 hears from Redis 250 ms late (its replica of the others' sessions lags that much), as a node on a busy
    // machine or link does: the window is then wide enough to be hit in every round that routes through n1.
    [OneTimeSetUp]
    public async Task StartCluster() =>
        _cluster = await ClusterNodes.StartWithSlowRedisLinkAsync(0, TimeSpan.FromMilliseconds(250),Enumerable.Range(0, Rounds).SelectMany(i => new[] { $"romeo{i}", $"juliet{i}" }).ToArray());

    [OneTimeTearDown]
    public async Task StopCluster() => await _cluster.DisposeAsync();

    [TearDown]
    public void ShowLogsOnFailure()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
            TestContext.Out.WriteLine(_cluster.Logs());
    }

    /// Logged in as a client sees it: bound, and its initial presence reflected back (RFC 6121 §4.2.2).
    private async Task<TestClient> LogInAsync(int node, string user)
    {
        var c = await _cluster.ConnectAsync(node, user, "r");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString(), TimeSpan.FromSeconds(10));
        return c;
    }

    [Test]
    public async Task Users_who_log_in_on_different_nodes_and_write_at_once_get_the_subscription_request_and_the_message_live()
    {
        var missed = new List<string>();
        for (int i = 0; i < Rounds; i++)
        {
            var loggingIn = new[] { LogInAsync(i % 3, $"romeo{i}"), LogInAsync((i + 1) % 3, $"juliet{i}") };
            await using var romeo = await loggingIn[0];
            await using var juliet = await loggingIn[1];
            // No waiting for the nodes to learn of each other's session: straight after the logins.
            await Task.WhenAll(
                romeo.SendAsync($"<presence to='juliet{i}@localhost' type='subscribe'/>"),
                juliet.SendAsync(Chat($"romeo{i}@localhost", "Wherefore art thou " + i)));
            var request = juliet.TryReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", TimeSpan.FromSeconds(5));
            var message = romeo.TryReceiveAsync(e => e.Name == "message" && Body(e) == "Wherefore art thou " + i, TimeSpan.FromSeconds(5));
            if (await request is null) missed.Add($"round {i}: subscription request (romeo on n{i % 3 + 1}, juliet on n{(i + 1) % 3 + 1})");
            if (await message is null) missed.Add($"round {i}: message");
        }
        Assert.That(missed, Is.Empty, "delivered live in every round");
    }
}
