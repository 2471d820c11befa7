using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Two of our servers federating over loopback: alice@a.test and bob@b.test talk as if they shared a server.
[TestFixture, Category("S2s")]
[TestFixtureSource(nameof(Kinds))]
public sealed class S2sTests(S2sCertificates certificates)
{
    public static readonly object[] Kinds = [S2sCertificates.FromTestCa, S2sCertificates.SelfSigned];

    private S2sPair _pair = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pair = await S2sPair.StartAsync(certificates);
        foreach (var u in new[] { "alice", "carol", "dave", "gina", "ivan" }) await _pair.A.AddUserAsync(u, u + "-secret");
        foreach (var u in new[] { "bob", "erin", "frank", "hank", "judy" }) await _pair.B.AddUserAsync(u, u + "-secret");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _pair.DisposeAsync();

    private static async Task<TestClient> Login(TestServer server, string user, string resource = "phone", bool presence = true)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", resource);
        if (presence)
        {
            await c.SendAsync("<presence/>");
            await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        }
        return c;
    }

    [Test]
    public async Task A_chat_message_crosses_to_the_other_server_and_the_answer_comes_back()
    {
        await using var alice = await Login(_pair.A, "alice");
        await using var bob = await Login(_pair.B, "bob");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='m1'><body>Hello from a.test</body></message>");
        var got = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m1", TimeSpan.FromSeconds(20));
        Assert.That(got.Attr("from"), Is.EqualTo("alice@a.test/phone"));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("Hello from a.test"));

        await bob.SendAsync("<message to='alice@a.test/phone' type='chat' id='m2'><body>Hello back</body></message>");
        var back = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m2", TimeSpan.FromSeconds(20));
        Assert.That(back.Attr("from"), Is.EqualTo("bob@b.test/phone"));
        Assert.That(back.ChildText("body", Ns.Client), Is.EqualTo("Hello back"));

        var expected = certificates == S2sCertificates.FromTestCa ? "SASL EXTERNAL" : "dialback";
        var outA = S2sPair.Links(_pair.A).Single(l => l.Outbound && l.Remote == "b.test");
        var outB = S2sPair.Links(_pair.B).Single(l => l.Outbound && l.Remote == "a.test");
        Assert.That(outA.Authentication, Is.EqualTo(expected));
        Assert.That(outB.Authentication, Is.EqualTo(expected));
        Assert.That(S2sPair.Links(_pair.B).Any(l => !l.Outbound && l.Remote == "a.test" && l.Authentication == expected));
    }

    [Test]
    public async Task A_subscription_both_ways_across_servers_brings_presence_and_updates()
    {
        await using var carol = await Login(_pair.A, "carol");
        await using var erin = await Login(_pair.B, "erin");
        var t = TimeSpan.FromSeconds(20);
        // Roster pushes go to resources that asked for the roster (RFC 6121 §2.1.6).
        await carol.IqAsync("<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>", t);

        // Carol asks to see Erin's presence; Erin approves; Carol then has Erin's current presence.
        await carol.SendAsync("<presence to='erin@b.test' type='subscribe'/>");
        var request = await erin.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", t);
        Assert.That(request.Attr("from"), Is.EqualTo("carol@a.test"));
        await erin.SendAsync("<presence to='carol@a.test' type='subscribed'/>");
        var approved = await carol.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribed", t);
        Assert.That(approved.Attr("from"), Is.EqualTo("erin@b.test"));
        var erinOnline = await carol.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == "erin@b.test/phone", t);
        Assert.That(erinOnline, Is.Not.Null);
        var push = await carol.ReceiveAsync(e => e.Name == "iq" && e.Child("query", Ns.Roster) is { } q
            && q.Elements("item", Ns.Roster).Any(i => i.Attr("jid") == "erin@b.test" && i.Attr("subscription") == "to"), t);
        Assert.That(push, Is.Not.Null);

        // And the other way round.
        await erin.SendAsync("<presence to='carol@a.test' type='subscribe'/>");
        await carol.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == "erin@b.test", t);
        await carol.SendAsync("<presence to='erin@b.test' type='subscribed'/>");
        await erin.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribed" && e.Attr("from") == "carol@a.test", t);
        await erin.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == "carol@a.test/phone", t);

        // A presence update reaches the subscriber on the other server, and so does going offline.
        await carol.SendAsync("<presence><show>away</show><status>lunch</status></presence>");
        var away = await erin.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "carol@a.test/phone" && e.ChildText("show", Ns.Client) == "away", t);
        Assert.That(away.ChildText("status", Ns.Client), Is.EqualTo("lunch"));
        await erin.SendAsync("<presence type='unavailable'/>");
        await carol.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "erin@b.test/phone" && e.Attr("type") == "unavailable", t);

        // A new login of Carol's probes Erin's server and learns Erin's presence (RFC 6121 §4.3).
        await erin.SendAsync("<presence><show>dnd</show></presence>");
        await using var carol2 = await Login(_pair.A, "carol", "laptop");
        var probed = await carol2.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "erin@b.test/phone", t);
        Assert.That(probed.ChildText("show", Ns.Client), Is.EqualTo("dnd"));
    }

    [Test]
    public async Task IQs_cross_both_ways_ping_version_and_vcard()
    {
        await using var alice = await Login(_pair.A, "alice", "desk");
        await using var bob = await Login(_pair.B, "bob", "desk");
        var t = TimeSpan.FromSeconds(20);

        var version = await bob.IqAsync("<iq to='a.test' type='get' id='ver-1'><query xmlns='jabber:iq:version'/></iq>", t);
        Assert.That(version.Attr("type"), Is.EqualTo("result"), version.ToString());
        Assert.That(version.Attr("from"), Is.EqualTo("a.test"));
        Assert.That(version.Child("query", Ns.Version)?.ChildText("name", Ns.Version), Is.Not.Null.And.Not.Empty);

        var ping = await alice.IqAsync("<iq to='b.test' type='get' id='ping-1'><ping xmlns='urn:xmpp:ping'/></iq>", t);
        Assert.That(ping.Attr("type"), Is.EqualTo("result"), ping.ToString());

        // A ping to a full JID is answered by the client itself, and the answer travels back.
        await bob.SendAsync("<iq to='alice@a.test/desk' type='get' id='ping-2'><ping xmlns='urn:xmpp:ping'/></iq>");
        var asked = await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "ping-2", t);
        Assert.That(asked.Attr("from"), Is.EqualTo("bob@b.test/desk"));
        await alice.SendAsync("<iq to='bob@b.test/desk' type='result' id='ping-2'/>");
        var pong = await bob.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "ping-2", t);
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        Assert.That(pong.Attr("from"), Is.EqualTo("alice@a.test/desk"));

        var set = await alice.IqAsync("<iq type='set' id='vc-set'><vCard xmlns='vcard-temp'><FN>Alice of A</FN></vCard></iq>", t);
        Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());
        var card = await bob.IqAsync("<iq to='alice@a.test' type='get' id='vc-get'><vCard xmlns='vcard-temp'/></iq>", t);
        Assert.That(card.Attr("type"), Is.EqualTo("result"), card.ToString());
        Assert.That(card.Child("vCard", "vcard-temp")?.ChildText("FN", "vcard-temp"), Is.EqualTo("Alice of A"));

        // An IQ to a user who does not exist is answered by the remote server with its error.
        var nobody = await bob.IqAsync("<iq to='nobody@a.test' type='get' id='vc-none'><vCard xmlns='vcard-temp'/></iq>", t);
        Assert.That(nobody.Attr("type"), Is.EqualTo("error"));
        Assert.That(nobody.Child("error", Ns.Client)?.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null, nobody.ToString());
    }

    [Test]
    public async Task Carbons_copy_messages_to_and_from_a_remote_contact_to_the_other_resources()
    {
        // XEP-0280 §6 and §7: a chat message received from another server and one sent to it are copied to the
        // account's other carbons-enabled resources, wrapped and stamped by our server.
        var t = TimeSpan.FromSeconds(20);
        await using var phone = await Login(_pair.A, "ivan", "phone");
        await using var laptop = await Login(_pair.A, "ivan", "laptop");
        await laptop.SendAsync("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
        await laptop.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "c1" && e.Attr("type") == "result");
        await using var judy = await Login(_pair.B, "judy");

        await judy.SendAsync("<message to='ivan@a.test/phone' type='chat' id='in-1'><body>to your phone</body></message>");
        Assert.That((await phone.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "in-1", t)).Attr("from"), Is.EqualTo("judy@b.test/phone"));
        var received = await laptop.ReceiveAsync(e => e.Name == "message" && e.Child("received", Ns.Carbons) is not null, t);
        Assert.That(received.Attr("from"), Is.EqualTo("ivan@a.test"), "a carbon comes from the account's bare JID");
        var inner = received.Child("received", Ns.Carbons)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!;
        Assert.That((inner.Attr("id"), inner.Attr("from"), inner.ChildText("body", Ns.Client)), Is.EqualTo(("in-1", "judy@b.test/phone", "to your phone")));

        await phone.SendAsync("<message to='judy@b.test' type='chat' id='out-1'><body>from my phone</body></message>");
        Assert.That((await judy.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "out-1", t)).ChildText("body", Ns.Client), Is.EqualTo("from my phone"));
        var sent = await laptop.ReceiveAsync(e => e.Name == "message" && e.Child("sent", Ns.Carbons) is not null, t);
        var copy = sent.Child("sent", Ns.Carbons)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!;
        Assert.That((copy.Attr("id"), copy.Attr("to"), copy.Attr("from")), Is.EqualTo(("out-1", "judy@b.test", "ivan@a.test/phone")));
        Assert.That(await phone.TryReceiveAsync(e => e.Name == "message" && e.Child("sent", Ns.Carbons) is not null, TimeSpan.FromMilliseconds(300)), Is.Null,
            "the sending resource gets no copy of its own message");
    }

    [Test]
    public async Task A_message_to_an_offline_user_on_the_other_server_is_spooled_archived_and_delivered_at_login()
    {
        await using (var dave = await Login(_pair.A, "dave"))
        {
            await dave.SendAsync("<message to='frank@b.test' type='chat' id='off-1'><body>while you were out</body></message>");
            // Delivered to the spool by then: the next login gets it.
            Assert.That(await Wait.UntilAsync(() => S2sPair.Links(_pair.B).Any(l => !l.Outbound && l.Remote == "a.test"), TimeSpan.FromSeconds(20)));
            await Task.Delay(300);
        }
        await using var frank = await Login(_pair.B, "frank");
        var got = await frank.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "off-1", TimeSpan.FromSeconds(20));
        Assert.That(got.Attr("from"), Is.EqualTo("dave@a.test/phone"));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("while you were out"));
        Assert.That(got.Child("delay", Ns.Delay), Is.Not.Null, "spooled messages carry XEP-0203 delay");

        await frank.SendAsync("<iq type='set' id='mam-1'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>");
        var archived = await frank.ReceiveAsync(e => e.Name == "message" && e.Child("result", Ns.Mam) is not null, TimeSpan.FromSeconds(10));
        var forwarded = archived.Child("result", Ns.Mam)!.Child("forwarded", "urn:xmpp:forward:0")!.Child("message", Ns.Client)!;
        Assert.That(forwarded.Attr("from"), Is.EqualTo("dave@a.test/phone"));
        Assert.That(forwarded.ChildText("body", Ns.Client), Is.EqualTo("while you were out"));
    }

    [Test]
    public async Task PEP_events_reach_a_subscribed_contact_on_the_other_server_filtered_by_its_caps()
    {
        await using var gina = await Login(_pair.A, "gina");
        await using var hank = await Login(_pair.B, "hank");
        var t = TimeSpan.FromSeconds(20);
        await gina.SendAsync("<presence to='hank@b.test' type='subscribe'/>");
        await hank.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", t);
        await hank.SendAsync("<presence to='gina@a.test' type='subscribed'/>");
        await hank.SendAsync("<presence to='gina@a.test' type='subscribe'/>");
        await gina.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", t);
        await gina.SendAsync("<presence to='hank@b.test' type='subscribed'/>");
        await gina.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == "hank@b.test/phone", t);

        const string tune = "http://jabber.org/protocol/tune";
        static string Publish(string title) =>
            $"<iq type='set' id='pub-{title}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{tune}'><item><tune xmlns='{tune}'><title>{title}</title></tune></item></publish></pubsub></iq>";
        static bool IsEvent(Element e, string title) => e.Name == "message" && e.Attr("from") == "gina@a.test"
            && e.Child("event", Ns.PubSubEvent)?.Child("items", Ns.PubSubEvent)?.Child("item", Ns.PubSubEvent)?.Child("tune", tune)?.ChildText("title", tune) == title;
        Assert.That((await gina.IqAsync(Publish("One"), t)).Attr("type"), Is.EqualTo("result"));

        // Hank's client announces tune+notify: a.test asks it for its features across the link, then sends the last item.
        var query = new Element("query", Ns.DiscoInfo)
            .Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "client").SetAttr("type", "pc").SetAttr("name", "s2s test"))
            .Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", Ns.DiscoInfo))
            .Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", tune + "+notify"));
        var ver = Xmpp.Server.Modules.Pep.PepCaps.VerificationString(query, "sha-1");
        await hank.SendAsync($"<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://s2s.test' ver='{ver}'/></presence>");
        while (true)
        {
            var q = await hank.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get" && e.Child("query", Ns.DiscoInfo) is not null, t);
            var answer = query.Clone().SetAttr("node", q.Child("query", Ns.DiscoInfo)!.Attr("node"));
            await hank.SendAsync(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", q.Attr("id")).SetAttr("to", q.Attr("from")).Add(answer));
            if (q.Attr("from") == "a.test") break;
        }
        await hank.ReceiveAsync(e => IsEvent(e, "One"), t);
        await gina.IqAsync(Publish("Two"), t);
        await hank.ReceiveAsync(e => IsEvent(e, "Two"), t);

        // Gone offline: no more events for that resource, and nothing breaks when publishing.
        await hank.SendAsync("<presence type='unavailable'/>");
        await gina.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "hank@b.test/phone" && e.Attr("type") == "unavailable", t);
        await gina.IqAsync(Publish("Three"), t);
        Assert.That(await hank.TryReceiveAsync(e => IsEvent(e, "Three"), TimeSpan.FromSeconds(1)), Is.Null);
    }
}
