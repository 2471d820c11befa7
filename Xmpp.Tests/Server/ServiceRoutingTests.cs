using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The one route for hosted service subdomains (IModuleBuilder.Service): MUC, upload and proxy side by side. The
/// service domain's IQs go to its ServiceIq handlers; JIDs at the MUC go to its rooms; the rest gets the RFC answers.
[TestFixture]
public sealed class ServiceRoutingTests
{
    private TestServer _server = null!;
    private TestClient _romeo = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:Proxy65:Port"] = TestServer.FreePort().ToString();
        });
        await _server.AddUserAsync("romeo", "romeo-pw");
        _romeo = await TestClient.ConnectAsync(_server, "romeo", "romeo-pw", "pc", sendPresence: true);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _romeo.DisposeAsync();
        await _server.DisposeAsync();
    }

    private static string? Condition(Element stanza) =>
        stanza.Child("error", Ns.Client)?.Elements().FirstOrDefault(e => e.Namespace == Ns.StanzaErrors)?.Name;

    [Test]
    public async Task The_domain_lists_each_hosted_service_exactly_once()
    {
        var reply = await _romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        var items = reply.Child("query", Ns.DiscoItems)!.Elements("item", Ns.DiscoItems).Select(e => e.Attr("jid")).ToList();
        Assert.That(items, Is.EqualTo(new[] { "conference.localhost", "proxy.localhost", "upload.localhost" }), reply.ToString());
    }

    [TestCase("conference.localhost", "conference")]
    [TestCase("upload.localhost", "store")]
    [TestCase("proxy.localhost", "proxy")]
    public async Task Each_service_answers_disco_info_for_its_own_domain(string service, string category)
    {
        var reply = await _romeo.IqAsync($"<iq type='get' to='{service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(reply.Attr("from"), Is.EqualTo(service));
        Assert.That(X.Matches(reply, $"<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='{category}'/></query></iq>"), reply.ToString());
    }

    [TestCase("conference.localhost")]
    [TestCase("upload.localhost")]
    [TestCase("proxy.localhost")]
    public async Task An_iq_no_handler_of_the_service_takes_is_service_unavailable(string service)
    {
        var reply = await _romeo.IqAsync($"<iq type='get' to='{service}'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(Condition(reply), Is.EqualTo("service-unavailable"), reply.ToString());
        Assert.That(reply.Attr("from"), Is.EqualTo(service));
    }

    [TestCase("conference.localhost")]
    [TestCase("upload.localhost")]
    [TestCase("someone@upload.localhost")]
    public async Task A_chat_message_to_a_service_that_consumes_none_is_service_unavailable(string to)
    {
        await _romeo.SendAsync($"<message type='chat' to='{to}' id='m1'><body>hello</body></message>");
        var error = await _romeo.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == to);
        Assert.That(error.Attr("type"), Is.EqualTo("error"));
        Assert.That(Condition(error), Is.EqualTo("service-unavailable"), error.ToString());
    }

    [Test]
    public async Task Jids_at_the_muc_reach_its_rooms_while_jids_at_upload_reach_uploads_handlers()
    {
        // A room that does not exist answers for itself (XEP-0045 §6.4) ...
        var room = await _romeo.IqAsync("<iq type='get' to='nosuchroom@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>");
        Assert.That(room.Attr("type"), Is.EqualTo("error"), room.ToString());
        Assert.That(Condition(room), Is.Not.EqualTo("service-unavailable"), room.ToString());
        // ... while upload has no entities, so its slot handler sees the JID and refuses it (XEP-0363 §4).
        var upload = await _romeo.IqAsync("<iq type='get' to='someone@upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='1'/></iq>");
        Assert.That(Condition(upload), Is.EqualTo("item-not-found"), upload.ToString());
    }

    [Test]
    public async Task Presence_to_a_service_domain_is_ignored()
    {
        await _romeo.SendAsync("<presence to='upload.localhost'/>");
        await _romeo.SendAsync("<presence to='conference.localhost'/>");
        var pong = await _romeo.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        var answers = await _romeo.DrainAsync(TimeSpan.FromMilliseconds(300));
        Assert.That(answers.Where(e => e.Name == "presence" && e.Attr("from")!.EndsWith(".localhost", StringComparison.Ordinal)), Is.Empty);
    }
}
