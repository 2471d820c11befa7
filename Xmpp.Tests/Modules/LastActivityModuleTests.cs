using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0012 last activity as "last seen": Romeo asks when Juliet was last online; strangers are told nothing.
[TestFixture]
public sealed class LastActivityModuleTests
{
    private const string Query = "<iq type='get' to='juliet@localhost'><query xmlns='jabber:iq:last'/></iq>";

    private static async Task<TestServer> Server()
    {
        var s = await TestServer.StartAsync();
        foreach (var user in new[] { "juliet", "romeo", "paris" })
            await s.AddUserAsync(user, user + "-pw");
        return s;
    }

    private static Task<TestClient> Connect(TestServer s, string user, string resource = "pc") =>
        TestClient.ConnectAsync(s, user, user + "-pw", resource);

    /// Juliet's roster says how far Romeo may see her presence.
    private static Task Juliet_has_romeo(TestServer s, Subscription subscription) =>
        s.Get<IStorage>().Rosters.SetItemAsync("juliet",
            new RosterItem("romeo@localhost", null, [], subscription, false, false, false, InRoster: true)).AsTask();

    private static async Task LoggedOut(TestServer s, string user, TimeSpan ago, string? status)
    {
        var accounts = s.Get<IStorage>().Accounts;
        var account = await accounts.FindAsync(user);
        await accounts.UpdateAsync(account! with { LastLogout = DateTimeOffset.UtcNow - ago, LastStatus = status });
    }

    private static long Seconds(Element reply) =>
        long.Parse(reply.Child("query", Ns.LastActivity)!.Attr("seconds")!, CultureInfo.InvariantCulture);

    private static void AssertError(Element reply, string condition)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        Assert.That(reply.Child("error", Ns.Client)?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    [TestCase(Subscription.From)]
    [TestCase(Subscription.Both)]
    public async Task A_subscriber_learns_how_long_ago_the_user_logged_out_and_the_status_then(Subscription subscription)
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, subscription);
        await LoggedOut(server, "juliet", TimeSpan.FromSeconds(903), "Heading Home");
        await using var romeo = await Connect(server, "romeo");

        var reply = await romeo.IqAsync(Query);
        Assert.That(X.Matches(reply, "<iq type='result' from='juliet@localhost'><query xmlns='jabber:iq:last'>Heading Home</query></iq>"), reply.ToString());
        Assert.That(Seconds(reply), Is.InRange(903, 910));
    }

    [TestCase(Subscription.None)]
    [TestCase(Subscription.To)]
    public async Task Someone_not_subscribed_to_the_users_presence_is_forbidden(Subscription subscription)
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, subscription);
        await LoggedOut(server, "juliet", TimeSpan.FromMinutes(5), "Heading Home");
        await using var romeo = await Connect(server, "romeo");
        await using var paris = await Connect(server, "paris");

        AssertError(await romeo.IqAsync(Query), "forbidden");
        AssertError(await paris.IqAsync(Query), "forbidden"); // not in her roster at all
    }

    [Test]
    public async Task The_real_logout_is_recorded_and_reported()
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, Subscription.Both);
        await using (var juliet = await Connect(server, "juliet"))
        {
            await juliet.SendAsync("<presence><status>Heading Home</status></presence>");
            await juliet.ReceiveAsync("presence");
            await juliet.CloseAsync();
        }
        Assert.That(await Wait.UntilAsync(async () => (await server.Get<IStorage>().Accounts.FindAsync("juliet"))?.LastLogout is not null), Is.True);

        await using var romeo = await Connect(server, "romeo");
        var reply = await romeo.IqAsync(Query);
        Assert.That(reply.Child("query", Ns.LastActivity)?.Text, Is.EqualTo("Heading Home"), reply.ToString());
        Assert.That(Seconds(reply), Is.InRange(0, 5));
    }

    [Test]
    public async Task A_user_with_an_available_resource_was_last_seen_zero_seconds_ago()
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, Subscription.From);
        await LoggedOut(server, "juliet", TimeSpan.FromHours(2), "Heading Home");
        await using var juliet = await Connect(server, "juliet");
        await juliet.SendAsync("<presence/>");
        await juliet.ReceiveAsync("presence");
        await using var romeo = await Connect(server, "romeo");

        var reply = await romeo.IqAsync(Query);
        Assert.That(X.Matches(reply, "<iq type='result'><query xmlns='jabber:iq:last' seconds='0'/></iq>"), reply.ToString());
        Assert.That(reply.Child("query", Ns.LastActivity)!.Text, Is.Empty);
    }

    [Test]
    public async Task A_bound_resource_that_never_sent_presence_does_not_count_as_online()
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, Subscription.Both);
        await LoggedOut(server, "juliet", TimeSpan.FromSeconds(60), null);
        await using var juliet = await Connect(server, "juliet");
        await using var romeo = await Connect(server, "romeo");

        Assert.That(Seconds(await romeo.IqAsync(Query)), Is.InRange(60, 65));
    }

    [Test]
    public async Task A_user_who_never_logged_out_has_no_last_activity()
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, Subscription.Both);
        await using var romeo = await Connect(server, "romeo");
        AssertError(await romeo.IqAsync(Query), "item-not-found");
    }

    [Test]
    public async Task A_user_may_ask_about_their_own_account()
    {
        await using var server = await Server();
        await LoggedOut(server, "juliet", TimeSpan.FromSeconds(30), "gone");
        await using var juliet = await Connect(server, "juliet");
        var reply = await juliet.IqAsync(Query);
        Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
        Assert.That(Seconds(reply), Is.InRange(30, 35));
    }

    [Test]
    public async Task The_server_reports_its_uptime()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server, "romeo");
        var reply = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='jabber:iq:last'/></iq>");
        Assert.That(X.Matches(reply, "<iq type='result' from='localhost'><query xmlns='jabber:iq:last' seconds='*'/></iq>"), reply.ToString());
        Assert.That(Seconds(reply), Is.InRange(0, 60));
        Assert.That(reply.Child("query", Ns.LastActivity)!.Text, Is.Empty, "XEP-0012 §5: no text for a server");
    }

    [TestCase("localhost")]
    [TestCase("juliet@localhost")]
    public async Task A_set_is_a_bad_request(string to)
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, Subscription.Both);
        await using var romeo = await Connect(server, "romeo");
        AssertError(await romeo.IqAsync($"<iq type='set' to='{to}'><query xmlns='jabber:iq:last'/></iq>"), "bad-request");
    }

    [Test]
    public async Task A_query_to_a_full_jid_reaches_the_client_itself()
    {
        await using var server = await Server();
        await Juliet_has_romeo(server, Subscription.Both);
        await using var juliet = await Connect(server, "juliet", "balcony");
        await using var romeo = await Connect(server, "romeo");

        await romeo.SendAsync("<iq type='get' id='idle1' to='juliet@localhost/balcony'><query xmlns='jabber:iq:last'/></iq>");
        var asked = await juliet.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "idle1");
        Assert.That(asked.Attr("from"), Is.EqualTo("romeo@localhost/pc"));
        await juliet.SendAsync("<iq type='result' id='idle1' to='romeo@localhost/pc'><query xmlns='jabber:iq:last' seconds='123'/></iq>");
        var answer = await romeo.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "idle1");
        Assert.That(Seconds(answer), Is.EqualTo(123));
    }

    [Test]
    public async Task The_server_announces_last_activity()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server, "romeo");
        var info = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='jabber:iq:last'/></query></iq>"), info.ToString());
    }
}
