using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// Our server federating with a real Prosody and a real ejabberd (Debian packages) on loopback. Each fixture starts
/// one peer and one of our servers, with certificates from a test CA both trust (SASL EXTERNAL both ways, XEP-0178) or
/// with self-signed certificates neither trusts (dialback over TLS both ways, XEP-0220). The peer finds ours through
/// SRV records served by a TestDns that only the peer's mount namespace sees; ours finds the peer through the static
/// peer map. Romeo and friends are on the peer, Alice and friends on ours.
[TestFixture, Category("Federation")]
[TestFixtureSource(nameof(Kinds))]
public sealed class FederationInteropTests(PeerKind kind, S2sCertificates certificates)
{
    public static readonly object[] Kinds =
    [
        new object[] { PeerKind.Prosody, S2sCertificates.FromTestCa },
        new object[] { PeerKind.Prosody, S2sCertificates.SelfSigned },
        new object[] { PeerKind.Ejabberd, S2sCertificates.FromTestCa },
        new object[] { PeerKind.Ejabberd, S2sCertificates.SelfSigned },
    ];

    private const string Ours = "ours.test";
    private static readonly TimeSpan T = TimeSpan.FromSeconds(20);
    private static readonly string[] PeerUsers = ["romeo", "juliet", "mercutio", "tybalt", "benvolio"];
    private static readonly string[] OurUsers = ["alice", "bob", "carol", "dave", "erin", "frank"];

    private string _root = null!;
    private TestDns _dns = null!;
    private FederationPeer _peer = null!;
    private TestServer _server = null!;

    private string PeerDomain => kind == PeerKind.Prosody ? "prosody.test" : "ejabberd.test";
    private string Expected => certificates == S2sCertificates.FromTestCa ? "SASL EXTERNAL" : "dialback";

    [OneTimeSetUp]
    public async Task Start()
    {
        // Like the fault tests: skipped without root; the programs themselves test.sh installs, so their absence fails.
        if (!FederationPeer.CanRun) Assert.Ignore("needs root: to bind the test DNS server on port 53 and to bind-mount a private resolv.conf");
        if (FederationPeer.Missing(kind) is { } missing) Assert.Fail(missing);
        _root = Path.Combine(Path.GetTempPath(), "xmpp-fed-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_root);
        string? caFile = null;
        TestCa? ca = null;
        if (certificates == S2sCertificates.FromTestCa)
        {
            ca = TestCa.Create();
            caFile = Path.Combine(_root, "ca.pem");
            File.WriteAllText(caFile, ca.Certificate.ExportCertificatePem());
        }
        // Self-signed ones too, not the one our server would make at start: that one is made for the domain only.
        var ourCerts = Path.Combine(_root, "certs-ours");
        FederationPeer.IssueCertificate(ca, Ours, ourCerts);
        var (peerCert, peerKey) = FederationPeer.IssueCertificate(ca, PeerDomain, Path.Combine(_root, "certs-peer"));
        ca?.Dispose();

        int ourS2s = TestServer.FreePort();
        _dns = TestDns.StartOnPort53();
        _dns.AddXmppServer(Ours, ourS2s);
        _dns.AddXmppServer("conference." + Ours, ourS2s);
        _peer = await FederationPeer.StartAsync(kind, PeerDomain, Path.Combine(_root, "peer"), peerCert, peerKey, caFile, _dns);
        _server = await TestServer.StartAsync(Path.Combine(_root, "ours"), o =>
        {
            o["Xmpp:Domains:0"] = Ours;
            o["Xmpp:CertDir"] = ourCerts;
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Port"] = ourS2s.ToString();
            o["Xmpp:S2s:Peers:" + PeerDomain] = "127.0.0.1:" + _peer.S2sPort;
            o["Xmpp:S2s:Peers:conference." + PeerDomain] = "127.0.0.1:" + _peer.S2sPort;
            o["Xmpp:S2s:ConnectTimeoutSeconds"] = "3";
            if (caFile is not null)
            {
                o["Xmpp:S2s:TrustedCaFile"] = caFile;
                o["Xmpp:S2s:RequireVerifiedCertificates:0"] = "*";
            }
        });
        foreach (var u in OurUsers) await _server.AddUserAsync(u, u + "-secret");
        foreach (var u in PeerUsers) await _peer.RegisterAsync(u, u + "-secret");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        // Each step runs even when one before it throws: a peer left running would outlive the test run.
        try
        {
            if (_server is not null) await _server.DisposeAsync();
        }
        finally
        {
            try
            {
                if (_peer is not null) await _peer.DisposeAsync();
            }
            finally
            {
                if (_dns is not null) await _dns.DisposeAsync();
                if (_root is not null)
                {
                    try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                }
            }
        }
    }

    [TearDown]
    public void ShowPeerLogOnFailure()
    {
        if (_peer is not null && TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
            TestContext.Out.WriteLine(_peer.Log);
    }

    private async Task<TestClient> Ours_(string user, string resource = "phone")
    {
        var c = await TestClient.ConnectAsync(_server, user, user + "-secret", resource);
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString(), T);
        return c;
    }

    private async Task<TestClient> Theirs(string user, string resource = "desk")
    {
        var c = await _peer.LoginAsync(user, user + "-secret", resource);
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString(), T);
        return c;
    }

    [Test, Order(1)]
    public async Task Chat_messages_cross_both_ways_and_each_direction_authenticates_as_configured()
    {
        await using var alice = await Ours_("alice");
        await using var romeo = await Theirs("romeo");
        await alice.SendAsync($"<message to='romeo@{PeerDomain}' type='chat' id='m1'><body>Hello from ours</body></message>");
        var got = await romeo.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m1", T);
        Assert.That(got.Attr("from"), Is.EqualTo($"alice@{Ours}/phone"));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("Hello from ours"));

        await romeo.SendAsync($"<message to='alice@{Ours}/phone' type='chat' id='m2'><body>Hello from {kind}</body></message>");
        var back = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m2", T);
        Assert.That(back.Attr("from"), Is.EqualTo($"romeo@{PeerDomain}/desk"));
        Assert.That(back.ChildText("body", Ns.Client), Is.EqualTo($"Hello from {kind}"));

        // Our outbound link: how the peer let us in. Our inbound link: how the peer proved its domain to us.
        var links = _server.Get<Xmpp.Server.Links.S2s.S2sLinkManager>().Links;
        Assert.That(links.Single(l => l.Outbound && l.Remote == PeerDomain).Authentication, Is.EqualTo(Expected), string.Join("\n", links));
        Assert.That(links.Where(l => !l.Outbound && l.Remote == PeerDomain).Select(l => l.Authentication), Has.Member(Expected), string.Join("\n", links));
        // And the peer's log agrees, for both directions; with the other mechanism it logs nothing of the kind.
        bool external = certificates == S2sCertificates.FromTestCa;
        var (inbound, outbound) = _peer.AuthenticationLogLines(Ours, external);
        // The peer writes its log on its own schedule (ejabberd's logger is asynchronous): wait for the lines.
        await Wait.UntilAsync(() => _peer.FullLog.Contains(inbound) && _peer.FullLog.Contains(outbound), TimeSpan.FromSeconds(10));
        var log = _peer.FullLog;
        Assert.That(log, Does.Contain(inbound).And.Contain(outbound));
        var (otherIn, otherOut) = _peer.AuthenticationLogLines(Ours, !external);
        Assert.That(log, Does.Not.Contain(otherIn).And.Not.Contain(otherOut));
    }

    [Test]
    public async Task A_subscription_both_ways_brings_roster_pushes_presence_and_probes()
    {
        await using var bob = await Ours_("bob");
        await using var juliet = await Theirs("juliet");
        await bob.IqAsync("<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>", T);
        await juliet.IqAsync("<iq type='get' id='roster-1'><query xmlns='jabber:iq:roster'/></iq>", T);
        var julietJid = $"juliet@{PeerDomain}";
        var bobJid = $"bob@{Ours}";

        // Bob asks to see Juliet's presence; Juliet approves; Bob gets the approval, a roster push and her presence.
        await bob.SendAsync($"<presence to='{julietJid}' type='subscribe'/>");
        var request = await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", T);
        Assert.That(request.Attr("from"), Is.EqualTo(bobJid));
        await juliet.SendAsync($"<presence to='{bobJid}' type='subscribed'/>");
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribed" && e.Attr("from") == julietJid, T);
        await bob.ReceiveAsync(e => e.Name == "iq" && e.Child("query", Ns.Roster) is { } q
            && q.Elements("item", Ns.Roster).Any(i => i.Attr("jid") == julietJid && i.Attr("subscription") == "to"), T);
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == julietJid + "/desk", T);

        // And the other way round: Juliet's server gets the push and Bob's presence from ours.
        await juliet.SendAsync($"<presence to='{bobJid}' type='subscribe'/>");
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == julietJid, T);
        await bob.SendAsync($"<presence to='{julietJid}' type='subscribed'/>");
        await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribed" && e.Attr("from") == bobJid, T);
        await juliet.ReceiveAsync(e => e.Name == "iq" && e.Child("query", Ns.Roster) is { } q
            && q.Elements("item", Ns.Roster).Any(i => i.Attr("jid") == bobJid && i.Attr("subscription") == "both"), T);
        await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == bobJid + "/phone", T);

        // Updates and going offline reach the other side.
        await bob.SendAsync("<presence><show>away</show><status>lunch</status></presence>");
        var away = await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == bobJid + "/phone" && e.ChildText("show", Ns.Client) == "away", T);
        Assert.That(away.ChildText("status", Ns.Client), Is.EqualTo("lunch"));
        await juliet.SendAsync("<presence><show>dnd</show></presence>");
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == julietJid + "/desk" && e.ChildText("show", Ns.Client) == "dnd", T);

        // A new login on each side probes the other server (RFC 6121 §4.3) and learns the contact's presence.
        await using var bob2 = await Ours_("bob", "laptop");
        var probed = await bob2.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == julietJid + "/desk", T);
        Assert.That(probed.ChildText("show", Ns.Client), Is.EqualTo("dnd"));
        await using var juliet2 = await Theirs("juliet", "tablet");
        var probedBack = await juliet2.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == bobJid + "/phone", T);
        Assert.That(probedBack.ChildText("show", Ns.Client), Is.EqualTo("away"));

        await bob.SendAsync("<presence type='unavailable'/>");
        await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == bobJid + "/phone" && e.Attr("type") == "unavailable", T);
    }

    [Test]
    public async Task A_user_of_the_peer_joins_our_room_and_talks_with_ours()
    {
        var room = $"verona-{kind.ToString().ToLowerInvariant()}@conference.{Ours}";
        await using var carol = await Ours_("carol");
        await MucTestBase.CreateInstantAsync(carol, room, "Carol");

        await using var mercutio = await Theirs("mercutio");
        var self = await MucTestBase.JoinAsync(mercutio, room, "Mercutio");
        Assert.That(self.Attr("type"), Is.Not.EqualTo("error"), self.ToString());
        Assert.That(self.Attr("from"), Is.EqualTo(room + "/Mercutio"));
        // Carol sees the remote occupant arrive, with his real JID (the room is non-anonymous to its owner).
        var arrived = await carol.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Mercutio", T);
        Assert.That(arrived.Child("x", Ns.MucUser)?.Child("item", Ns.MucUser)?.Attr("jid"), Does.StartWith($"mercutio@{PeerDomain}/"));

        await mercutio.SendAsync($"<message to='{room}' type='groupchat' id='g1'><body>A plague on both your houses</body></message>");
        var atCarol = await carol.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "groupchat" && e.ChildText("body", Ns.Client) == "A plague on both your houses", T);
        Assert.That(atCarol.Attr("from"), Is.EqualTo(room + "/Mercutio"));
        // The sender gets his own message back from the room (XEP-0045 §7.4).
        await mercutio.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == room + "/Mercutio" && e.Attr("id") == "g1", T);

        await carol.SendAsync($"<message to='{room}' type='groupchat' id='g2'><body>Peace, Mercutio</body></message>");
        var atMercutio = await mercutio.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "Peace, Mercutio", T);
        Assert.That(atMercutio.Attr("from"), Is.EqualTo(room + "/Carol"));
        Assert.That(atMercutio.Attr("type"), Is.EqualTo("groupchat"));

        // Private messages between occupants go through the room (XEP-0045 §7.5), across the link both ways.
        await mercutio.SendAsync($"<message to='{room}/Carol' type='chat' id='pm1'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>");
        var pm = await carol.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "pm1", T);
        Assert.That(pm.Attr("from"), Is.EqualTo(room + "/Mercutio"));
        await carol.SendAsync($"<message to='{room}/Mercutio' type='chat' id='pm2'><body>what?</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>");
        var pmBack = await mercutio.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "pm2", T);
        Assert.That(pmBack.Attr("from"), Is.EqualTo(room + "/Carol"));
        Assert.That(pmBack.ChildText("body", Ns.Client), Is.EqualTo("what?"));

        // Leaving is seen by the others.
        await mercutio.SendAsync($"<presence to='{room}/Mercutio' type='unavailable'/>");
        await carol.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Mercutio" && e.Attr("type") == "unavailable", T);
    }

    [Test]
    public async Task One_of_ours_joins_a_room_on_the_peer_and_talks_with_its_users()
    {
        var room = $"capulet@conference.{PeerDomain}";
        await using var tybalt = await Theirs("tybalt");
        await MucTestBase.CreateInstantAsync(tybalt, room, "Tybalt");

        await using var dave = await Ours_("dave");
        var self = await MucTestBase.JoinAsync(dave, room, "Dave");
        Assert.That(self.Attr("type"), Is.Not.EqualTo("error"), self.ToString());
        await tybalt.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Dave", T);

        await dave.SendAsync($"<message to='{room}' type='groupchat' id='h1'><body>Good den, Tybalt</body></message>");
        var atTybalt = await tybalt.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "Good den, Tybalt", T);
        Assert.That(atTybalt.Attr("from"), Is.EqualTo(room + "/Dave"));
        await dave.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == room + "/Dave" && e.ChildText("body", Ns.Client) == "Good den, Tybalt", T);

        await tybalt.SendAsync($"<message to='{room}' type='groupchat' id='h2'><body>Thou art a villain</body></message>");
        var atDave = await dave.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "Thou art a villain", T);
        Assert.That(atDave.Attr("from"), Is.EqualTo(room + "/Tybalt"));
        Assert.That(atDave.Attr("type"), Is.EqualTo("groupchat"));

        await tybalt.SendAsync($"<message to='{room}/Dave' type='chat' id='pm3'><body>a word with you</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>");
        var pm = await dave.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "pm3", T);
        Assert.That(pm.Attr("from"), Is.EqualTo(room + "/Tybalt"));

        // Dave's client goes away without leaving: our server tells the room he is gone (RFC 6121 §4.6.3, directed
        // presence), so no ghost stays on the peer.
        dave.Abort();
        await tybalt.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Dave" && e.Attr("type") == "unavailable", T);

        // The room is on the peer's conference subdomain: a link of its own, authenticated the same way.
        var links = _server.Get<Xmpp.Server.Links.S2s.S2sLinkManager>().Links;
        Assert.That(links.Where(l => !l.Outbound && l.Remote == "conference." + PeerDomain).Select(l => l.Authentication), Has.Member(Expected),
            string.Join("\n", links));
    }

    /// Mutual presence subscription between one of ours and one of the peer's, each side approving.
    private async Task SubscribeBothWaysAsync(TestClient ours, TestClient theirs)
    {
        string o = ours.Jid!.Bare.ToString(), p = theirs.Jid!.Bare.ToString();
        await ours.SendAsync($"<presence to='{p}' type='subscribe'/>");
        await theirs.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == o, T);
        await theirs.SendAsync($"<presence to='{o}' type='subscribed'/>");
        await theirs.SendAsync($"<presence to='{o}' type='subscribe'/>");
        await ours.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == p, T);
        await ours.SendAsync($"<presence to='{p}' type='subscribed'/>");
        await ours.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == theirs.Jid.ToString(), T);
        await theirs.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == ours.Jid.ToString(), T);
    }

    /// A disco#info answer a client gives for its caps (XEP-0115), with the verification string computed from it.
    private static (Element Query, string Ver) CapsInfo(string name, params string[] features)
    {
        var query = new Element("query", Ns.DiscoInfo)
            .Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "client").SetAttr("type", "pc").SetAttr("name", name));
        foreach (var f in features.Prepend(Ns.DiscoInfo)) query.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
        return (query, Xmpp.Server.Modules.Pep.PepCaps.VerificationString(query, "sha-1")!);
    }

    private static string CapsPresence(string ver, string show = "chat") =>
        $"<presence><show>{show}</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://fed.test/client' ver='{ver}'/></presence>";

    /// Answers the disco#info queries a client gets (its own server may ask too) until one from DOMAIN was answered.
    private static async Task AnswerCapsQueriesUntilAsync(TestClient c, string domain, Element info)
    {
        while (true)
        {
            var q = await c.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get" && e.Child("query", Ns.DiscoInfo) is not null, T);
            var answer = info.Clone();
            if (q.Child("query", Ns.DiscoInfo)!.Attr("node") is { } node) answer.SetAttr("node", node);
            await c.SendAsync(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", q.Attr("id")).SetAttr("to", q.Attr("from")).Add(answer));
            if (Jid.Parse(q.Attr("from")!).Domain == domain) return;
        }
    }

    private static string Tune(string title) =>
        $"<iq type='set' id='pub-{title}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/tune'>" +
        $"<item><tune xmlns='http://jabber.org/protocol/tune'><title>{title}</title></tune></item></publish></pubsub></iq>";

    private static bool IsTuneEvent(Element e, string from, string title) =>
        e.Name == "message" && e.Attr("from") == from && e.Child("event", Ns.PubSubEvent)?.Child("items", Ns.PubSubEvent) is { } items
        && items.Attr("node") == "http://jabber.org/protocol/tune"
        && items.Elements("item", Ns.PubSubEvent).Any(i => i.Child("tune", "http://jabber.org/protocol/tune")?.ChildText("title", "http://jabber.org/protocol/tune") == title);

    [Test]
    public async Task PEP_events_PEP_queries_and_vCards_cross_both_ways()
    {
        await using var erin = await Ours_("erin");
        await using var benvolio = await Theirs("benvolio");
        await SubscribeBothWaysAsync(erin, benvolio);
        string erinJid = erin.Jid!.Bare.ToString(), benvolioJid = benvolio.Jid!.Bare.ToString();
        const string tuneNotify = "http://jabber.org/protocol/tune+notify";

        // Erin publishes before Benvolio's client says what it wants: the last item comes when it does (XEP-0163 §4.3.4),
        // after our server asked Benvolio's client for its caps across the link.
        var pub = await erin.IqAsync(Tune("First"), T);
        Assert.That(pub.Attr("type"), Is.EqualTo("result"), pub.ToString());
        var (theirInfo, theirVer) = CapsInfo("Federation test, peer side", tuneNotify);
        await benvolio.SendAsync(CapsPresence(theirVer));
        await AnswerCapsQueriesUntilAsync(benvolio, Ours, theirInfo);
        var last = await benvolio.ReceiveAsync(e => IsTuneEvent(e, erinJid, "First"), T);
        Assert.That(last.Attr("type"), Is.EqualTo("headline"));
        // And a new item is notified as it is published.
        await erin.IqAsync(Tune("Second"), T);
        await benvolio.ReceiveAsync(e => IsTuneEvent(e, erinJid, "Second"), T);

        // The other way: the peer learns Erin's caps from our server and notifies her of Benvolio's tune.
        var (ourInfo, ourVer) = CapsInfo("Federation test, our side", tuneNotify);
        await erin.SendAsync(CapsPresence(ourVer));
        await AnswerCapsQueriesUntilAsync(erin, PeerDomain, ourInfo);
        var theirPub = await benvolio.IqAsync(Tune("Third"), T);
        Assert.That(theirPub.Attr("type"), Is.EqualTo("result"), theirPub.ToString());
        await erin.ReceiveAsync(e => IsTuneEvent(e, benvolioJid, "Third"), T);

        // PEP queries to the contact's account cross the link both ways (XEP-0060 §6.5).
        var theirs = await erin.IqAsync($"<iq type='get' to='{benvolioJid}' id='items-1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/tune'/></pubsub></iq>", T);
        Assert.That(theirs.Attr("type"), Is.EqualTo("result"), theirs.ToString());
        Assert.That(theirs.ToString(), Does.Contain("Third"));
        var ours = await benvolio.IqAsync($"<iq type='get' to='{erinJid}' id='items-2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/tune'/></pubsub></iq>", T);
        Assert.That(ours.Attr("type"), Is.EqualTo("result"), ours.ToString());
        Assert.That(ours.ToString(), Does.Contain("Second"));

        // vCards (XEP-0054) of the contact, both ways.
        Assert.That((await benvolio.IqAsync("<iq type='set' id='vc-1'><vCard xmlns='vcard-temp'><FN>Benvolio Montague</FN></vCard></iq>", T)).Attr("type"), Is.EqualTo("result"));
        Assert.That((await erin.IqAsync("<iq type='set' id='vc-2'><vCard xmlns='vcard-temp'><FN>Erin of Ours</FN></vCard></iq>", T)).Attr("type"), Is.EqualTo("result"));
        var card = await erin.IqAsync($"<iq type='get' to='{benvolioJid}' id='vc-3'><vCard xmlns='vcard-temp'/></iq>", T);
        Assert.That(card.Child("vCard", "vcard-temp")?.ChildText("FN", "vcard-temp"), Is.EqualTo("Benvolio Montague"), card.ToString());
        var ourCard = await benvolio.IqAsync($"<iq type='get' to='{erinJid}' id='vc-4'><vCard xmlns='vcard-temp'/></iq>", T);
        Assert.That(ourCard.Child("vCard", "vcard-temp")?.ChildText("FN", "vcard-temp"), Is.EqualTo("Erin of Ours"), ourCard.ToString());
    }

    [Test]
    public async Task A_message_from_the_peer_to_an_offline_user_of_ours_waits_and_an_unknown_user_of_theirs_bounces()
    {
        await using (var romeo = await Theirs("romeo", "offline-test"))
        {
            await romeo.SendAsync($"<message to='frank@{Ours}' type='chat' id='off-1'><body>Wherefore art thou</body></message>");
            // An IQ after it on the same links: when its answer is back, the message has been through our router.
            var ping = await romeo.IqAsync($"<iq to='{Ours}' type='get' id='ping-off'><ping xmlns='urn:xmpp:ping'/></iq>", T);
            Assert.That(ping.Attr("type"), Is.EqualTo("result"), ping.ToString());
        }
        await using var frank = await Ours_("frank");
        var got = await frank.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "off-1", T);
        Assert.That(got.Attr("from"), Is.EqualTo($"romeo@{PeerDomain}/offline-test"));
        Assert.That(got.Child("delay", Ns.Delay), Is.Not.Null, "spooled messages carry XEP-0203 delay");

        // The peer answers for its own users: a message to nobody there comes back as an error from it.
        await frank.SendAsync($"<message to='nobody@{PeerDomain}' type='chat' id='nobody-1'><body>anyone?</body></message>");
        var error = await frank.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "nobody-1", T);
        Assert.That(error.Attr("type"), Is.EqualTo("error"), error.ToString());
        Assert.That(error.Attr("from"), Is.EqualTo($"nobody@{PeerDomain}"));
    }
}
