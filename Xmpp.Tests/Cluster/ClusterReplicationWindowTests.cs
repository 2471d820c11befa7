using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;
using static Xmpp.Tests.Cluster.ClusterSteps;

namespace Xmpp.Tests.Cluster;

/// The directory's replication window (docs/cluster-seams.md): a node learns of another node's sessions from Redis
/// events, a moment after they bind. Two users who log in on different nodes and at once write to each other must
/// get what they wrote live, never through the offline spool or a subscription request stored until the next login.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterReplicationWindowTests : ClusterFixture
{
    private const int Rounds = 15;
    private const int Pairs = 12;
    private const int Contacts = 12;

    // Node n1 hears from Redis 250 ms late (its replica of the others' sessions lags that much), as a node on a busy
    // machine or link does: the window is then wide enough to be hit in every round that routes through n1. Its
    // replica lags another 500 ms (events applied late), as under load, where the events queue behind other work.
    protected override Task<ClusterNodes> StartAsync() =>
        ClusterNodes.StartWithSlowRedisLinkAsync(0, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500),
            [.. Enumerable.Range(0, Contacts).Select(i => ($"ada{i}", $"ben{i}"))],
            [.. Enumerable.Range(0, Rounds).SelectMany(i => new[] { $"romeo{i}", $"juliet{i}" }),
             .. Enumerable.Range(0, Pairs).SelectMany(i => new[] { $"rosa{i}", $"lena{i}" }),
             .. Enumerable.Range(0, Contacts).SelectMany(i => new[] { $"ada{i}", $"ben{i}" })]);

    /// Logged in as a client sees it: bound, and its initial presence reflected back (RFC 6121 §4.2.2).
    private async Task<TestClient> LogInAsync(int node, string user)
    {
        var c = await Cluster.ConnectAsync(node, user, "r");
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

    // The spool and the drain on different nodes (docs/cluster-seams.md): n1 decides lena is offline (its reply from
    // Redis comes 250 ms late, so its spool write commits well after), while lena's login on n2 or n3 drains her spool
    // in that time. Each message must reach her in that session, once and in order (XEP-0160 §4, RFC 6121 §8.5.2.2.1),
    // not wait in the spool for her next login.
    [Test]
    public async Task Messages_spooled_on_one_node_while_the_recipient_logs_in_on_another_reach_that_session_once_and_in_order()
    {
        var senders = await Task.WhenAll(Enumerable.Range(0, Pairs).Select(i => LogInAsync(0, $"rosa{i}")));
        try
        {
            var results = await Task.WhenAll(Enumerable.Range(0, Pairs).Select(async i =>
            {
                var login = Cluster.ConnectAsync(1 + i % 2, $"lena{i}", "r");
                for (int k = 0; k < 3; k++) await senders[i].SendAsync(Chat($"lena{i}@localhost", $"m{i}-{k}"));
                await using var lena = await login;
                var got = new List<string>();
                // Until all three are in, then a moment more for a second copy.
                while (await lena.TryReceiveAsync(e => e.Name == "message" && Body(e)?.StartsWith($"m{i}-", StringComparison.Ordinal) == true,
                           TimeSpan.FromMilliseconds(got.Count < 3 ? 6000 : 500)) is { } m)
                    got.Add(Body(m)!);
                return (Pair: i, Got: got);
            }));
            var wrong = results.Where(r => !r.Got.SequenceEqual([$"m{r.Pair}-0", $"m{r.Pair}-1", $"m{r.Pair}-2"]))
                .Select(r => $"pair {r.Pair} (lena on n{2 + r.Pair % 2}): {string.Join(", ", r.Got)}").ToList();
            Assert.That(wrong, Is.Empty, "every message in the login's session, once, in order");
        }
        finally
        {
            foreach (var s in senders) await s.DisposeAsync();
        }
    }

    // RFC 6121 §4.2.2 (probes answered at login) and §4.4.2 (the broadcast to subscribers): two contacts who log in at
    // the same moment on different nodes each see the other available, although each node's copy of the directory
    // may not have the other's session yet when the login's probes are answered and its presence is broadcast.
    [Test]
    public async Task Contacts_who_log_in_at_the_same_moment_on_different_nodes_each_see_the_others_presence()
    {
        var missed = new List<string>();
        var results = await Task.WhenAll(Enumerable.Range(0, Contacts).Select(async i =>
        {
            var logins = new[] { Cluster.ConnectAsync(0, $"ada{i}", "r"), Cluster.ConnectAsync(1 + i % 2, $"ben{i}", "r") };
            await using var ada = await logins[0];
            await using var ben = await logins[1];
            var adaSees = ada.TryReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == ben.Jid!.ToString(), TimeSpan.FromSeconds(5));
            var benSees = ben.TryReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == ada.Jid!.ToString(), TimeSpan.FromSeconds(5));
            return (Pair: i, AdaSaw: await adaSees is not null, BenSaw: await benSees is not null);
        }));
        foreach (var r in results)
        {
            if (!r.AdaSaw) missed.Add($"pair {r.Pair}: ada (n1) did not see ben (n{2 + r.Pair % 2})");
            if (!r.BenSaw) missed.Add($"pair {r.Pair}: ben (n{2 + r.Pair % 2}) did not see ada (n1)");
        }
        Assert.That(missed, Is.Empty, "each sees the other's presence");
    }
}
