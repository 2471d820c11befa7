using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0280 Message Carbons: Romeo reads and writes on several devices; each enabled device sees both sides of his
/// conversations exactly once, and nobody else can slip a "copy" onto them.
[TestFixture]
public sealed class CarbonsModuleTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private static async Task<TestServer> Server()
    {
        var s = await TestServer.StartAsync();
        foreach (var user in new[] { "romeo", "juliet", "mallory" }) await s.AddUserAsync(user, user + "-pw");
        return s;
    }

    private static async Task<TestClient> Online(TestServer s, string user, string resource, bool carbons = false, int priority = 0)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        await c.SendAsync($"<presence><priority>{priority}</priority></presence>");
        if (carbons) Assert.That((await c.IqAsync(Enable)).Attr("type"), Is.EqualTo("result"));
        else await Settle(c);
        return c;
    }

    private const string Enable = "<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>";
    private const string Disable = "<iq type='set'><disable xmlns='urn:xmpp:carbons:2'/></iq>";

    /// A ping round trip: everything the server did for this client's earlier stanzas has been done.
    private static async Task Settle(TestClient c) =>
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    private static Func<Element, bool> Carbon(string direction) =>
        e => e.Name == "message" && e.Child(direction, Ns.Carbons) is not null;

    private static Func<Element, bool> Message(string id) =>
        e => e.Name == "message" && e.Attr("id") == id;

    private static Element Carried(Element carbon) =>
        carbon.Elements().Single(e => e.Namespace == Ns.Carbons).Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!;

    /// Every message (originals and copies) that arrives within the quiet window.
    private static async Task<List<Element>> Messages(TestClient c) =>
        (await c.DrainAsync(Quiet)).Where(e => e.Name == "message").ToList();

    [TestCase(null)]
    [TestCase("localhost")]
    [TestCase("romeo@localhost")]
    public async Task Enable_and_disable_are_answered_repeatedly_with_results(string? to)
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "home");
        var address = to is null ? "" : $" to='{to}'";
        foreach (var payload in new[] { "enable", "enable", "disable", "disable", "enable" })
        {
            // XEP-0280 §10.1: a second enable (or disable) is not an error.
            var reply = await romeo.IqAsync($"<iq type='set'{address}><{payload} xmlns='urn:xmpp:carbons:2'/></iq>");
            Assert.That(reply.Attr("type"), Is.EqualTo("result"), payload);
        }
    }

    [Test]
    public async Task Asking_to_enable_with_get_is_a_bad_request()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "home");
        var reply = await romeo.IqAsync("<iq type='get'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
        Assert.That(X.Matches(reply, "<iq type='error'><error><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    }

    [Test]
    public async Task Carbons_are_announced_in_the_servers_disco_info()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "home");
        var info = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:carbons:2'/></query></iq>"));
    }

    [Test]
    public async Task A_message_to_one_device_is_copied_once_to_each_other_enabled_device()
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        await using var garden = await Online(server, "romeo", "garden", carbons: true);
        await using var phone = await Online(server, "romeo", "phone");
        await using var juliet = await Online(server, "juliet", "balcony");

        await juliet.SendAsync("<message to='romeo@localhost/home' type='chat' id='m1'><body>What man art thou?</body></message>");

        var original = await home.ReceiveAsync(Message("m1"));
        Assert.That(original.Attr("from"), Is.EqualTo("juliet@localhost/balcony"));
        var copy = await garden.ReceiveAsync(Carbon("received"));
        Assert.That(X.Matches(copy,
            "<message from='romeo@localhost' to='romeo@localhost/garden' type='chat'>" +
            "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
            "<message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost/home' type='chat' id='m1'><body>What man art thou?</body></message>" +
            "</forwarded></received></message>"), copy.ToString());

        Assert.That(await Messages(home), Is.Empty, "the addressed device gets no copy of its own message");
        Assert.That(await Messages(garden), Is.Empty, "exactly one copy");
        Assert.That(await Messages(phone), Is.Empty, "carbons are off on the phone");
    }

    [Test]
    public async Task A_message_to_the_bare_jid_reaches_the_most_available_devices_and_is_copied_only_to_the_others()
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true, priority: 5);
        await using var garden = await Online(server, "romeo", "garden", carbons: true, priority: 5);
        await using var phone = await Online(server, "romeo", "phone", carbons: true, priority: 1);
        await using var juliet = await Online(server, "juliet", "balcony");

        await juliet.SendAsync("<message to='romeo@localhost' type='chat' id='b1'><body>Romeo?</body></message>");

        // RFC 6121 §8.5.2.1.1: both priority-5 devices get the original; XEP-0280 §7: neither also gets a copy.
        foreach (var device in new[] { home, garden })
        {
            var got = (await device.DrainAsync(Quiet)).Where(e => e.Name == "message").ToList();
            Assert.That(got, Has.Count.EqualTo(1));
            Assert.That(got[0].Attr("id"), Is.EqualTo("b1"));
        }
        var copies = await Messages(phone);
        Assert.That(copies, Has.Count.EqualTo(1), "one copy, not one per device that got the original");
        Assert.That(Carried(copies[0]).Attr("id"), Is.EqualTo("b1"));
        Assert.That(copies[0].Child("received", Ns.Carbons), Is.Not.Null);
    }

    [Test]
    public async Task A_sent_message_is_copied_to_the_other_enabled_devices_but_not_back_to_the_sender()
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        await using var garden = await Online(server, "romeo", "garden", carbons: true);
        await using var phone = await Online(server, "romeo", "phone");
        await using var juliet = await Online(server, "juliet", "balcony");

        await home.SendAsync("<message to='juliet@localhost/balcony' type='chat' id='s1'><body>Neither, fair saint</body></message>");

        var copy = await garden.ReceiveAsync(Carbon("sent"));
        Assert.That(X.Matches(copy,
            "<message from='romeo@localhost' to='romeo@localhost/garden' type='chat'>" +
            "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
            "<message xmlns='jabber:client' from='romeo@localhost/home' to='juliet@localhost/balcony' type='chat' id='s1'><body>Neither, fair saint</body></message>" +
            "</forwarded></sent></message>"), copy.ToString());
        Assert.That((await Messages(juliet)).Select(m => m.Attr("id")), Is.EqualTo(new[] { "s1" }));
        Assert.That(await Messages(garden), Is.Empty, "exactly one copy");
        Assert.That(await Messages(home), Is.Empty, "the sender gets no copy of what it sent");
        Assert.That(await Messages(phone), Is.Empty, "carbons are off on the phone");

        // After disabling, the garden device gets no more copies.
        Assert.That((await garden.IqAsync(Disable)).Attr("type"), Is.EqualTo("result"));
        await home.SendAsync("<message to='juliet@localhost/balcony' type='chat' id='s2'><body>Call me but love</body></message>");
        await juliet.ReceiveAsync(Message("s2"));
        Assert.That(await Messages(garden), Is.Empty);
    }

    [Test]
    public async Task A_note_to_self_reaches_each_enabled_device_exactly_once()
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        await using var garden = await Online(server, "romeo", "garden", carbons: true);
        await using var phone = await Online(server, "romeo", "phone", carbons: true);

        await home.SendAsync("<message to='romeo@localhost/garden' type='chat' id='n1'><body>buy poison</body></message>");

        var atGarden = await Messages(garden);
        Assert.That(atGarden, Has.Count.EqualTo(1));
        Assert.That(atGarden[0].Attr("id"), Is.EqualTo("n1"), "the addressed device gets the original only");
        var atPhone = await Messages(phone);
        Assert.That(atPhone, Has.Count.EqualTo(1));
        Assert.That(atPhone[0].Child("sent", Ns.Carbons), Is.Not.Null, "the third device gets one sent copy");
        Assert.That(await Messages(home), Is.Empty);
    }

    [TestCase("<private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/>")]
    [TestCase("<private xmlns='urn:xmpp:carbons:2'/>")]
    [TestCase("<no-copy xmlns='urn:xmpp:hints'/>")]
    public async Task Private_messages_are_not_copied_on_either_side(string hints)
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        await using var garden = await Online(server, "romeo", "garden", carbons: true);
        await using var balcony = await Online(server, "juliet", "balcony", carbons: true);
        await using var tomb = await Online(server, "juliet", "tomb", carbons: true);

        await home.SendAsync($"<message to='juliet@localhost/balcony' type='chat' id='p1'><body>only for you</body>{hints}</message>");

        var got = await balcony.ReceiveAsync(Message("p1"));
        // XEP-0280 §9: the receiving server removes <private/> before delivery.
        Assert.That(got.Child("private", Ns.Carbons), Is.Null);
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("only for you"));
        Assert.That(await Messages(garden), Is.Empty, "no sent copy");
        Assert.That(await Messages(tomb), Is.Empty, "no received copy");
    }

    [TestCase("chat", "<received xmlns='urn:xmpp:receipts' id='m7'/>")]
    [TestCase("normal", "<received xmlns='urn:xmpp:receipts' id='m7'/>")]
    [TestCase("chat", "<displayed xmlns='urn:xmpp:chat-markers:0' id='m7'/>")]
    [TestCase("normal", "<displayed xmlns='urn:xmpp:chat-markers:0' id='m7'/>")]
    [TestCase("normal", "<composing xmlns='http://jabber.org/protocol/chatstates'/>")]
    public async Task Receipts_markers_and_chat_states_from_one_device_reach_the_others_as_copies(string type, string payload)
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        await using var garden = await Online(server, "romeo", "garden", carbons: true);
        await using var balcony = await Online(server, "juliet", "balcony", carbons: true);
        await using var tomb = await Online(server, "juliet", "tomb", carbons: true);

        // Romeo read Juliet's message on his home computer: his garden device learns it, and so does Juliet's tomb.
        await home.SendAsync($"<message to='juliet@localhost/balcony' type='{type}' id='t1'>{payload}</message>");

        await balcony.ReceiveAsync(Message("t1"));
        var sent = await garden.ReceiveAsync(Carbon("sent"));
        Assert.That(X.Matches(Carried(sent), $"<message id='t1'>{payload}</message>"), sent.ToString());
        var received = await tomb.ReceiveAsync(Carbon("received"));
        Assert.That(X.Matches(Carried(received), $"<message id='t1'>{payload}</message>"), received.ToString());
    }

    [TestCase("<message type='headline' id='x1'><body>news</body></message>")]
    [TestCase("<message type='groupchat' id='x1'><body>room talk</body></message>")]
    [TestCase("<message type='error' id='x1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")]
    [TestCase("<message id='x1'><x xmlns='urn:example:not-im'/></message>")]
    [TestCase("<message type='normal' id='x1'><subject>no body</subject></message>")]
    public async Task Messages_that_are_not_instant_messages_are_not_copied(string message)
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        await using var garden = await Online(server, "romeo", "garden", carbons: true);
        await using var balcony = await Online(server, "juliet", "balcony", carbons: true);
        await using var tomb = await Online(server, "juliet", "tomb", carbons: true);

        var stanza = X.Parse(message).SetAttr("to", "juliet@localhost/balcony");
        await home.SendAsync(stanza);

        await balcony.ReceiveAsync(Message("x1"));
        Assert.That(await Messages(garden), Is.Empty, "no sent copy");
        Assert.That(await Messages(tomb), Is.Empty, "no received copy");
    }

    [TestCase("mallory", "evil", "received")]
    [TestCase("mallory", "evil", "sent")]
    [TestCase("romeo", "garden", "sent")]
    public async Task A_client_cannot_send_a_carbon_copy_of_its_own_making(string user, string resource, string direction)
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        await using var forger = await Online(server, user, resource);

        await forger.SendAsync(
            $"<message to='romeo@localhost/home' type='chat' id='f1'><{direction} xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
            "<message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost/home' type='chat'><body>I love another</body></message>" +
            $"</forwarded></{direction}></message>");

        var error = await forger.ReceiveAsync(e => e.Attr("type") == "error");
        Assert.That(X.Matches(error, "<message id='f1' type='error'><error><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
        await forger.SendAsync("<message to='romeo@localhost/home' type='chat' id='f2'><body>hello</body></message>");
        var got = await Messages(home);
        Assert.That(got.Select(m => m.Attr("id")), Is.EqualTo(new[] { "f2" }), "only the honest message arrives");
    }

    /// Stanzas the server routes without a local sender (from a remote server, later) skip the Inbound stage: the
    /// delivery guard still stops a wrapper that does not come from the recipient's own bare JID.
    [TestCase("mallory@localhost/evil")]
    [TestCase("romeo@localhost/garden")]
    [TestCase("juliet@localhost")]
    public async Task A_forged_carbon_routed_by_the_server_is_dropped_before_delivery(string from)
    {
        await using var server = await Server();
        await using var home = await Online(server, "romeo", "home", carbons: true);
        var router = server.Get<IRouter>();

        await router.RouteAsync(Forged(from, "romeo@localhost/home"), null);
        await router.RouteAsync(Forged(from, "romeo@localhost"), null);

        Assert.That(await Messages(home), Is.Empty);
    }

    [Test]
    public async Task A_forged_carbon_for_an_offline_account_is_not_spooled()
    {
        await using var server = await Server();
        await server.Get<IRouter>().RouteAsync(Forged("mallory@localhost/evil", "romeo@localhost"), null);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("romeo"), Is.EqualTo(0));

        await using var home = await Online(server, "romeo", "home", carbons: true);
        Assert.That(await Messages(home), Is.Empty);
    }

    [Test]
    public async Task A_copy_for_a_device_that_is_gone_reaches_no_other_device_and_is_not_spooled()
    {
        await using var server = await Server();
        var router = server.Get<IRouter>();
        var stale = Forged("romeo@localhost", "romeo@localhost/gone");

        await router.RouteAsync(stale.Clone(), null);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("romeo"), Is.EqualTo(0));

        await using var home = await Online(server, "romeo", "home", carbons: true);
        await router.RouteAsync(stale.Clone(), null);
        Assert.That(await Messages(home), Is.Empty, "a copy made for one device is never handed to another");
    }

    private static Element Forged(string from, string to) => X.Parse(
        $"<message from='{from}' to='{to}' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
        "<message xmlns='jabber:client' from='juliet@localhost/balcony' to='romeo@localhost/home' type='chat'><body>I love another</body></message>" +
        "</forwarded></received></message>");
}
