using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Cluster;
using Xmpp.Tests.Support;
using static Xmpp.Tests.Cluster.ClusterSteps;

namespace Xmpp.Tests.Cluster;

/// Requests between nodes that must not be lost (docs/cluster-seams.md, "Request and answer frames"): n3 reaches Redis
/// through a StallingProxy, which holds the bytes Redis sends n3 from the moment they carry a given request or answer,
/// then cuts the connection and drops them, as a pub/sub message Redis wrote to a connection that broke is lost. And what
/// other nodes must learn of an account removed or created through one node.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterRequestLossTests : ClusterFixture
{
    protected override Task<ClusterNodes> StartAsync() =>
        ClusterNodes.StartWithStallableRedisLinkAsync(2, "romeo", "juliet", "tybalt", "mercutio", "nurse");

    private StallingProxy Link => Cluster.RedisLink!;

    private async Task<TestClient> LogInAsync(int node, string user, string resource)
    {
        var c = await Cluster.ConnectAsync(node, user, resource);
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString(), TimeSpan.FromSeconds(10));
        return c;
    }

    /// What n3 receives next that contains pattern is held and, once it is, the link breaks: n3 never reads it.
    private async Task LoseNextToN3Async(string pattern, Func<Task> action)
    {
        var held = Link.StallOnAsync(pattern, Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(15), replies: true);
        await action();
        await held;
        Link.Cut();
    }

    private static bool IsStreamError(Element e, string condition) => e.Is("error", Ns.Streams) && e.FirstElement?.Name == condition;

    [Test]
    public async Task An_administrators_disconnect_whose_request_n3_never_read_is_asked_again_and_ends_the_session()
    {
        await using var juliet = await LogInAsync(2, "juliet", "balcony");
        await using var romeo = await LogInAsync(0, "romeo", "garden");
        await UntilReachableAsync(romeo, juliet);

        // XEP-0133 through `xmppd session kick` on n1: the session-close request to n3 is lost with n3's connection.
        await LoseNextToN3Async(RemoteSessionSink.CloseRequest, async () =>
        {
            var (code, output) = await Cluster.CliAsync(0, "session", "kick", juliet.Jid!.ToString());
            Assert.That(code, Is.EqualTo(0), output);
        });

        // n1 had no answer within 2 s and asks again; n3, back on Redis, ends the session (RFC 6120 §4.9.3.14).
        var ended = await juliet.TryReceiveAsync(e => IsStreamError(e, StreamErrors.PolicyViolation), TimeSpan.FromSeconds(8));
        Assert.That(ended, Is.Not.Null, "juliet's session on n3 is still up after the kick");
    }

    [Test]
    public async Task A_late_disconnect_request_leaves_alone_a_newer_session_that_bound_the_same_full_jid()
    {
        var juliet = await LogInAsync(2, "juliet", "window");
        await using var _ = juliet;
        await using var romeo = await LogInAsync(0, "romeo", "lane");
        await UntilReachableAsync(romeo, juliet);
        // A second connection of juliet's, authenticated on n3 and not bound yet.
        await using var newer = await TestClient.OpenAsync(Cluster.Nodes[2].Endpoint);
        await newer.AuthenticateAsync("juliet", ClusterNodes.Password);

        // The kick of the session n1 knows reaches n3 late: n3's link holds it while the newer connection binds the same
        // full JID there (RFC 6120 §7.7.2.2: the older session ends with conflict).
        var held = Link.StallOnAsync(RemoteSessionSink.CloseRequest, Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(15), replies: true);
        var (code, output) = await Cluster.CliAsync(0, "session", "kick", "juliet@localhost/window");
        Assert.That(code, Is.EqualTo(0), output);
        await held;
        Task binding;
        try
        {
            binding = newer.BindAsync("window");
            var replaced = await juliet.TryReceiveAsync(e => IsStreamError(e, StreamErrors.Conflict), TimeSpan.FromSeconds(2));
            Assert.That(replaced, Is.Not.Null, "the older session was not replaced while the request was held");
            // The newer session is bound right after the older one's conflict goes out; give that a moment on a busy machine.
            await Task.Delay(200);
        }
        finally { Link.Release(); }
        await binding;
        newer.StartReading();
        await newer.SendAsync(new Element("presence", Ns.Client));

        // The request names the session n1 knew; the one bound now is newer and stays.
        var ended = await newer.TryReceiveAsync(e => e.Is("error", Ns.Streams), TimeSpan.FromSeconds(3));
        Assert.That(ended, Is.Null, "the late request ended the newer session");
        Assert.That(newer.StreamEnded, Is.False);
        var n3 = Cluster.Nodes[2].Process!.Output;
        Assert.That(n3, Does.Contain("asked to end juliet@localhost/window as of record").And.Contain("the session bound here now is newer: left alone"));
    }

    [Test]
    public async Task A_removed_accounts_session_on_another_node_ends_though_the_close_request_was_lost()
    {
        await using var tybalt = await LogInAsync(2, "tybalt", "street");
        await using var mercutio = await LogInAsync(0, "mercutio", "square");
        await UntilReachableAsync(mercutio, tybalt);

        // XEP-0077 §3.2 through `xmppd user del` on n1: the session-close request to n3, if n1 gets to send one, is lost
        // with n3's connection. Before it, n3 has been told that the account's keys changed (a cache drop): n3 may
        // find the account gone and end the session itself, and n1 then finds no session to end.
        var held = Link.StallOnAsync(RemoteSessionSink.CloseRequest, Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(10), replies: true);
        _ = held.ContinueWith(t => { if (t.IsCompletedSuccessfully) Link.Cut(); else _ = t.Exception; }, TaskScheduler.Default);
        try
        {
            var (code, output) = await Cluster.CliAsync(0, "user", "del", "tybalt@localhost");
            Assert.That(code, Is.EqualTo(0), output);
            var ended = await tybalt.TryReceiveAsync(e => IsStreamError(e, StreamErrors.NotAuthorized), TimeSpan.FromSeconds(8));
            Assert.That(ended, Is.Not.Null, "the session of a removed account is still up on n3");
        }
        finally { Link.Disarm(); }
        var n3 = Cluster.Nodes[2].Process!.Output;
        TestContext.Out.WriteLine(n3.Contains("The account of tybalt@localhost/street has been removed on another node", StringComparison.Ordinal)
            ? "n3 ended the session on learning of the removal" : "n3 ended the session when n1 asked again");
    }

    [Test]
    public async Task An_account_created_through_another_node_after_this_node_found_it_missing_gets_its_messages()
    {
        await using var romeo = await LogInAsync(1, "romeo", "verona");
        // RFC 6121 §8.5.1: no such user. n2 now knows paris does not exist.
        await romeo.SendAsync(Chat("paris@localhost", "Are you there?").SetAttr("id", "p1"));
        var bounced = await romeo.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "p1", TimeSpan.FromSeconds(5));
        Assert.That(bounced.Attr("type"), Is.EqualTo("error"), bounced.ToString());

        var (code, output) = await Cluster.CliAsync(0, "user", "add", "paris@localhost", ClusterNodes.Password);
        Assert.That(code, Is.EqualTo(0), output);
        // n2 learnt of the new account's keys (account-keys) and with them that it exists: the message is kept for him.
        await romeo.SendAsync(Chat("paris@localhost", "Welcome to Verona").SetAttr("id", "p2"));
        Assert.That(await romeo.TryReceiveAsync(e => e.Name == "message" && e.Attr("id") == "p2", TimeSpan.FromSeconds(1.5)), Is.Null,
            "n2 still thinks paris does not exist");
        await using var paris = await Cluster.ConnectAsync(2, "paris", "palace");
        var spooled = await paris.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "p2", TimeSpan.FromSeconds(10));
        Assert.That(Body(spooled), Is.EqualTo("Welcome to Verona"));
    }

    private static async Task<(TestClient Client, string Id)> ManagedAsync(ClusterNodes cluster, int node, string user, string resource)
    {
        var c = await cluster.ConnectAsync(node, user, resource, presence: false);
        await c.SendAsync(new Element("enable", Ns.StreamManagement).SetAttr("resume", "true"));
        var enabled = await c.ReceiveAsync(e => e.Name == "enabled");
        return (c, enabled.Attr("id")!);
    }

    private async Task<TestClient> ResumeOnAsync(int node, string user, string id)
    {
        var c = await TestClient.OpenAsync(Cluster.Nodes[node].Endpoint);
        await c.AuthenticateAsync(user, ClusterNodes.Password);
        await c.SendAsync(new Element("resume", Ns.StreamManagement).SetAttr("previd", id).SetAttr("h", "0"));
        return c;
    }

    [Test]
    public async Task A_resumption_whose_chunk_request_was_lost_asks_again_and_gets_every_unacknowledged_stanza()
    {
        var (juliet, id) = await ManagedAsync(Cluster, 2, "juliet", "tomb");
        await using var _ = juliet;
        await using var romeo = await LogInAsync(0, "romeo", "crypt");
        await UntilReachableAsync(romeo, juliet);
        // Eight messages of 12 KB: base64 in chunks of 64 KiB, so the hand-over's answer carries the first few and the
        // rest is asked for with sm-chunk.
        var ids = Enumerable.Range(1, 8).Select(i => $"big{i}").ToList();
        foreach (var m in ids)
            await romeo.SendAsync(Chat(juliet.Jid!.ToString(), m + " " + new string('x', 12_000)).SetAttr("id", m));
        foreach (var m in ids) await juliet.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == m);
        juliet.Abort(); // nothing acknowledged

        TestClient? again = null;
        await LoseNextToN3Async("sm-chunk", async () => again = await ResumeOnAsync(0, "juliet", id));
        await using var resumedClient = again!;
        var resumed = await again!.ReadElementAsync(TimeSpan.FromSeconds(15));
        Assert.That(resumed.Is("resumed", Ns.StreamManagement), resumed.ToString());
        again.StartReading();
        // (The headlines that showed n1 knew the session come again too, being unacknowledged as well.)
        var got = (await again.DrainAsync(TimeSpan.FromSeconds(1))).Where(e => e.Name == "message" && e.Attr("id") is not null)
            .Select(e => e.Attr("id")).ToList();
        Assert.That(got, Is.EqualTo(ids), "every unacknowledged message, once, in order");
    }

    [Test]
    public async Task A_hand_over_whose_answer_was_lost_has_the_old_node_route_the_unacknowledged_stanzas_again()
    {
        var (nurse, id) = await ManagedAsync(Cluster, 0, "nurse", "chamber");
        await using var _ = nurse;
        await using var romeo = await LogInAsync(1, "romeo", "orchard");
        await UntilReachableAsync(romeo, nurse);
        var ids = new[] { "h1", "h2", "h3" };
        foreach (var m in ids) await romeo.SendAsync(Chat(nurse.Jid!.ToString(), "word " + m).SetAttr("id", m));
        foreach (var m in ids) await nurse.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == m);
        nurse.Abort(); // nothing acknowledged

        // n3 asks n1 for the session; n1 lets it go and answers, and that answer is lost on its way to n3.
        TestClient? again = null;
        await LoseNextToN3Async("<handover jid=\"", async () => again = await ResumeOnAsync(2, "nurse", id));
        await using var resumedClient = again!;
        var failed = await again!.ReadElementAsync(TimeSpan.FromSeconds(10));
        Assert.That(failed.Is("failed", Ns.StreamManagement), failed.ToString());
        // XEP-0198 §5: the client binds anew. n1 never hears that n3 took the session, and routes what it had not
        // acknowledged again, as for a detached session that expired: to the full JID, bound again here.
        await again.BindAsync("chamber");
        again.StartReading();
        await again.SendAsync(new Element("presence", Ns.Client));
        foreach (var m in ids)
        {
            var message = await again.TryReceiveAsync(e => e.Name == "message" && e.Attr("id") == m, TimeSpan.FromSeconds(8));
            Assert.That(message, Is.Not.Null, $"{m} was not routed again");
            Assert.That(message!.Child("delay", Ns.Delay), Is.Not.Null, "stamped with when it was first sent");
        }
        Assert.That(Cluster.Nodes[0].Process!.Output, Does.Contain("did not confirm it took nurse@localhost/chamber"));
    }
}
