using System.Diagnostics;
using System.Net;
using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// XEP-0124/XEP-0206 over real HTTPS: a BOSH session runs the TCP stream logic, request by request.
[TestFixture]
public sealed class BoshTests
{
    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            configure?.Invoke(o);
        });
        await server.AddUserAsync("romeo", "pw-romeo");
        await server.AddUserAsync("juliet", "pw-juliet");
        return server;
    }

    [Test]
    public async Task Session_creation_answers_with_sid_limits_and_stream_features_without_starttls()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        var created = await bosh.CreateAsync(server.Domain, wait: 30);
        Assert.That(X.Matches(created, "<body xmlns='http://jabber.org/protocol/httpbind' sid='*' wait='30' hold='1' requests='2' inactivity='*' authid='*' from='localhost'/>"), created.ToString());
        var features = created.Elements().Single(e => e.Name == "features");
        Assert.That(features.Namespace, Is.EqualTo(Ns.Streams));
        Assert.That(features.Child("mechanisms", Ns.Sasl), Is.Not.Null);
        Assert.That(features.Child("starttls", Ns.Tls), Is.Null);
    }

    [Test]
    public async Task A_bosh_client_logs_in_and_a_held_request_is_answered_when_a_tcp_client_writes()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        await bosh.LoginAsync(server, "romeo", "pw-romeo", "web");
        await bosh.SendAsync("<presence xmlns='jabber:client'/>");
        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "pw-juliet", "phone", sendPresence: true);

        // The request carrying Romeo's message has nothing to bring back yet, so the server holds it.
        var held = bosh.SendAsync("<message xmlns='jabber:client' to='juliet@localhost/phone' type='chat'><body>via bosh</body></message>");
        var got = await juliet.ReceiveAsync("message");
        Assert.That(got.Attr("from"), Is.EqualTo("romeo@localhost/web"));
        await Task.Delay(300);
        Assert.That(held.IsCompleted, Is.False, "an empty request is held while there is nothing to say");
        await juliet.SendAsync("<message to='romeo@localhost/web' type='chat'><body>long poll</body></message>");
        var answer = await held.WaitAsync(TimeSpan.FromSeconds(10));
        var message = answer.Elements().Single(e => e.Name == "message");
        Assert.That(message.Namespace, Is.EqualTo(Ns.Client));
        Assert.That(message.ChildText("body", Ns.Client), Is.EqualTo("long poll"));
    }

    [Test]
    public async Task A_held_request_comes_back_empty_after_wait_seconds()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        await bosh.CreateAsync(server.Domain, wait: 1);
        var clock = Stopwatch.StartNew();
        var empty = await bosh.SendAsync();
        Assert.That(empty.Elements(), Is.Empty);
        Assert.That(empty.Attr("type"), Is.Null);
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromMilliseconds(800)));
    }

    [Test]
    public async Task A_repeated_request_id_gets_the_same_answer_again()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        await bosh.CreateAsync(server.Domain, wait: 2);
        var body = bosh.Next("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-UNKNOWN'>=</auth>");
        var first = await bosh.PostRawAsync(body);
        var again = await bosh.PostRawAsync(body);
        Assert.That(first, Does.Contain("invalid-mechanism"));
        Assert.That(again, Is.EqualTo(first), "XEP-0124 §14.3: the connection broke, the client asks again");
    }

    [Test]
    public async Task A_request_that_overtakes_an_earlier_one_waits_for_it_and_payloads_keep_rid_order()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        await bosh.LoginAsync(server, "romeo", "pw-romeo", "web", wait: 3);
        await bosh.SendAsync("<presence xmlns='jabber:client'/>");
        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "pw-juliet", "phone", sendPresence: true);

        var earlier = bosh.Next("<message xmlns='jabber:client' to='juliet@localhost/phone' type='chat'><body>one</body></message>");
        var later = bosh.Next("<message xmlns='jabber:client' to='juliet@localhost/phone' type='chat'><body>two</body></message>");
        var second = bosh.PostAsync(later);
        await Task.Delay(300);
        var first = bosh.PostAsync(earlier);
        Assert.That((await juliet.ReceiveAsync("message")).ChildText("body", Ns.Client), Is.EqualTo("one"));
        Assert.That((await juliet.ReceiveAsync("message")).ChildText("body", Ns.Client), Is.EqualTo("two"));
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(20));
    }

    [Test]
    public async Task A_request_id_outside_the_window_or_an_unknown_sid_is_item_not_found()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        await bosh.CreateAsync(server.Domain, wait: 1);
        bosh.Rid += 10;
        var far = await bosh.SendAsync();
        Assert.That(X.Matches(far, "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='item-not-found'/>"), far.ToString());
        var unknown = await bosh.PostAsync("<body xmlns='http://jabber.org/protocol/httpbind' rid='5' sid='nope'/>");
        Assert.That(unknown.Attr("condition"), Is.EqualTo("item-not-found"));
        var broken = await bosh.PostAsync("<body xmlns='http://jabber.org/protocol/httpbind' rid='5' sid='nope'><message>");
        Assert.That(broken.Attr("condition"), Is.EqualTo("bad-request"));
    }

    [Test]
    public async Task A_stream_error_arrives_in_a_terminating_body_with_remote_stream_error()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        await bosh.CreateAsync(server.Domain, wait: 5);
        var body = await bosh.SendAsync("<message xmlns='jabber:client' to='juliet@localhost'><body>too early</body></message>");
        Assert.That(X.Matches(body, "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='remote-stream-error'/>"), body.ToString());
        var error = body.Elements().Single();
        Assert.That(error.Is("error", Ns.Streams) && error.Child("not-authorized", Ns.StreamErrors) is not null, error.ToString());
    }

    [Test]
    public async Task Terminate_ends_the_session_and_its_resource()
    {
        await using var server = await Server();
        using var bosh = new BoshTestClient(server);
        await bosh.LoginAsync(server, "romeo", "pw-romeo", "web");
        var directory = server.Get<Xmpp.Server.Sessions.ISessionDirectory>();
        Assert.That(directory.Get(Jid.Parse("romeo@localhost")).Count, Is.EqualTo(1));
        var end = await bosh.SendAsync("<presence xmlns='jabber:client' type='unavailable'/>", " type='terminate'");
        Assert.That(end.Attr("type"), Is.EqualTo("terminate"));
        Assert.That(await Wait.UntilAsync(() => directory.Get(Jid.Parse("romeo@localhost")).Count == 0), Is.True);
        var after = await bosh.SendAsync();
        Assert.That(after.Attr("condition"), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task A_session_without_requests_for_the_inactivity_period_is_ended()
    {
        await using var server = await Server(o => o["Xmpp:Http:BoshInactivitySeconds"] = "5");
        using var bosh = new BoshTestClient(server);
        await bosh.LoginAsync(server, "romeo", "pw-romeo", "web");
        var directory = server.Get<Xmpp.Server.Sessions.ISessionDirectory>();
        Assert.That(await Wait.UntilAsync(() => directory.Get(Jid.Parse("romeo@localhost")).Count == 0, TimeSpan.FromSeconds(20)), Is.True);
        var after = await bosh.SendAsync();
        Assert.That(after.Attr("type"), Is.EqualTo("terminate"));
    }

    [Test]
    public async Task Cors_preflight_is_answered_and_a_foreign_origin_is_refused_when_origins_are_listed()
    {
        await using var server = await Server(o => o["Xmpp:Http:AllowedOrigins:0"] = "https://chat.example.org");
        using var bosh = new BoshTestClient(server);
        using var preflight = new HttpRequestMessage(HttpMethod.Options, BoshTestClient.Url(server));
        preflight.Headers.Add("Origin", "https://chat.example.org");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        using var ok = await bosh.Http.SendAsync(preflight);
        Assert.That(ok.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(ok.Headers.GetValues("Access-Control-Allow-Origin").Single(), Is.EqualTo("https://chat.example.org"));

        using var foreign = new HttpRequestMessage(HttpMethod.Post, BoshTestClient.Url(server)) { Content = new StringContent("<body/>") };
        foreign.Headers.Add("Origin", "https://evil.example.com");
        using var refused = await bosh.Http.SendAsync(foreign);
        Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
    }
}
