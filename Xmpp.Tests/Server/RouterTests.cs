using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// RFC 6120 §10 and RFC 6121 §8 delivery rules, played out between real clients.
[TestFixture]
public sealed class RouterTests
{
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        foreach (var u in new[] { "romeo", "juliet", "nurse" }) await _server.AddUserAsync(u, u + "-secret");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private Task<TestClient> Login(string user, string resource, bool presence = true, int priority = 0) =>
        LoginWithPriority(user, resource, presence, priority);

    private async Task<TestClient> LoginWithPriority(string user, string resource, bool presence, int priority)
    {
        var c = await TestClient.ConnectAsync(_server, user, user + "-secret", resource);
        if (presence)
        {
            await c.SendAsync($"<presence><priority>{priority}</priority></presence>");
            await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        }
        return c;
    }

    [Test]
    public async Task Romeo_sends_a_chat_to_juliets_full_jid_and_the_server_stamps_from()
    {
        await using var romeo = await Login("romeo", "balcony");
        await using var juliet = await Login("juliet", "garden");
        await romeo.SendAsync("<message to='juliet@localhost/garden' type='chat' id='m1'><body>Wherefore art thou?</body></message>");
        var m = await juliet.ReceiveAsync("message");
        Assert.That(m.Attr("from"), Is.EqualTo("romeo@localhost/balcony"));
        Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo("Wherefore art thou?"));
        Assert.That(m.Attr("id"), Is.EqualTo("m1"));
    }

    [Test]
    public async Task Chat_to_the_bare_jid_goes_to_the_highest_priority_resource_only()
    {
        await using var romeo = await Login("romeo", "r-prio");
        await using var low = await Login("juliet", "low", priority: 1);
        await using var high = await Login("juliet", "high", priority: 5);
        await romeo.SendAsync("<message to='juliet@localhost' type='chat'><body>to the best one</body></message>");
        Assert.That((await high.ReceiveAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("to the best one"));
        Assert.That(await low.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null);
    }

    [Test]
    public async Task Headline_to_the_bare_jid_goes_to_every_non_negative_resource()
    {
        await using var romeo = await Login("romeo", "r-headline");
        await using var a = await Login("nurse", "a", priority: 1);
        await using var b = await Login("nurse", "b", priority: 0);
        await using var hidden = await Login("nurse", "neg", priority: -1);
        await romeo.SendAsync("<message to='nurse@localhost' type='headline'><body>news</body></message>");
        Assert.That((await a.ReceiveAsync("message")).ChildText("body", Ns.Client), Is.EqualTo("news"));
        Assert.That((await b.ReceiveAsync("message")).ChildText("body", Ns.Client), Is.EqualTo("news"));
        Assert.That(await hidden.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null);
    }

    [Test]
    public async Task Chat_to_an_unknown_resource_falls_back_to_the_bare_jid()
    {
        await using var romeo = await Login("romeo", "r-fallback");
        await using var juliet = await Login("juliet", "only");
        await romeo.SendAsync("<message to='juliet@localhost/gone' type='chat'><body>fallback</body></message>");
        Assert.That((await juliet.ReceiveAsync("message")).ChildText("body", Ns.Client), Is.EqualTo("fallback"));
    }

    // RFC 6121 §8.5.3.1 routes a stanza to a full JID whether or not that resource has sent presence: a client that
    // never sends presence (a bot, a raw socket) still learns that its message failed.
    [TestCase(true)]
    [TestCase(false)]
    public async Task Message_to_a_nonexistent_user_gets_service_unavailable(bool senderSentPresence)
    {
        await using var romeo = await Login("romeo", senderSentPresence ? "r-nouser" : "r-nouser-nopresence", senderSentPresence);
        await romeo.SendAsync("<message to='tybalt@localhost' type='chat' id='x1'><body>hello?</body></message>");
        var error = await romeo.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error", TimeSpan.FromSeconds(5));
        Assert.That(error.Attr("id"), Is.EqualTo("x1"));
        Assert.That(error.Attr("from"), Is.EqualTo("tybalt@localhost"));
        Assert.That(X.Matches(error, "<message type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"), error.ToString());
    }

    [Test]
    public async Task Message_to_another_domain_gets_remote_server_not_found()
    {
        await using var romeo = await Login("romeo", "r-remote");
        await romeo.SendAsync("<message to='someone@example.org' type='chat' id='x2'><body>far away</body></message>");
        var error = await romeo.ReceiveAsync(e => e.Attr("type") == "error");
        Assert.That(error.Child("error", Ns.Client)?.Child("remote-server-not-found", Ns.StanzaErrors), Is.Not.Null, error.ToString());
    }

    [Test]
    public async Task Malformed_to_gets_jid_malformed()
    {
        await using var romeo = await Login("romeo", "r-malformed");
        await romeo.SendAsync("<message to='a@b@c' type='chat' id='x3'><body>?</body></message>");
        var error = await romeo.ReceiveAsync(e => e.Attr("type") == "error");
        Assert.That(error.Child("error", Ns.Client)?.Child("jid-malformed", Ns.StanzaErrors), Is.Not.Null, error.ToString());
    }

    [Test]
    public async Task Unknown_message_type_gets_bad_request()
    {
        await using var romeo = await Login("romeo", "r-type");
        await romeo.SendAsync("<message to='juliet@localhost' type='shout' id='x4'><body>!</body></message>");
        var error = await romeo.ReceiveAsync(e => e.Attr("type") == "error");
        Assert.That(error.Child("error", Ns.Client)?.Child("bad-request", Ns.StanzaErrors), Is.Not.Null, error.ToString());
    }

    [Test]
    public async Task Iq_to_an_unknown_namespace_on_the_server_returns_service_unavailable()
    {
        await using var romeo = await Login("romeo", "r-iq");
        var reply = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='urn:example:nothing'/></iq>");
        Assert.That(X.Matches(reply, "<iq type='error' from='localhost'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"), reply.ToString());
    }

    [Test]
    public async Task Iq_get_with_two_children_is_bad_request()
    {
        await using var romeo = await Login("romeo", "r-iq2");
        var reply = await romeo.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(reply.Child("error", Ns.Client)?.Child("bad-request", Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    [Test]
    public async Task Iq_to_a_full_jid_is_delivered_and_the_answer_comes_back()
    {
        await using var romeo = await Login("romeo", "r-iq3");
        await using var juliet = await Login("juliet", "iq-target");
        var ask = romeo.IqAsync("<iq type='get' to='juliet@localhost/iq-target'><query xmlns='jabber:iq:version'/></iq>");
        var request = await juliet.ReceiveAsync("iq");
        Assert.That(request.Attr("from"), Is.EqualTo("romeo@localhost/r-iq3"));
        await juliet.SendAsync($"<iq type='result' id='{request.Attr("id")}' to='romeo@localhost/r-iq3'><query xmlns='jabber:iq:version'><name>Juliet</name></query></iq>");
        var answer = await ask;
        Assert.That(answer.Attr("from"), Is.EqualTo("juliet@localhost/iq-target"));
        Assert.That(answer.Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Iq_to_a_missing_resource_returns_service_unavailable()
    {
        await using var romeo = await Login("romeo", "r-iq4");
        var reply = await romeo.IqAsync("<iq type='get' to='juliet@localhost/nowhere'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(reply.Child("error", Ns.Client)?.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    [Test]
    public async Task Iq_without_an_id_gets_bad_request()
    {
        await using var romeo = await Login("romeo", "r-noid");
        await romeo.SendRawAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        var reply = await romeo.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "error");
        Assert.That(reply.Child("error", Ns.Client)?.Child("bad-request", Ns.StanzaErrors), Is.Not.Null);
    }

    [Test]
    public async Task Error_stanzas_are_never_answered_with_errors()
    {
        await using var romeo = await Login("romeo", "r-err");
        await romeo.SendAsync("<message to='tybalt@localhost' type='error' id='e1'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        Assert.That(await romeo.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null);
    }
}
