using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// Rooms and stream resumption across three real xmppd nodes on one PostgreSQL database and one private redis-server
/// (issue 17, points 3 and 4): the nodes are separate processes, killed with SIGKILL where the test says so.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterRoomsTests
{
    private const string Room = "lobby@conference.localhost";
    private const int LeaseSeconds = ClusterNodes.LeaseSeconds;
    private ClusterNodes _cluster = null!;
    private readonly List<TestClient> _clients = [];

    // A cluster of its own per test: the tests kill nodes.
    [SetUp]
    public async Task Start() => _cluster = await ClusterNodes.StartAsync("alice", "bob", "carol");

    [TearDown]
    public async Task Stop()
    {
        foreach (var c in _clients) await c.DisposeAsync();
        _clients.Clear();
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
            TestContext.Out.WriteLine(_cluster.Logs());
        await _cluster.DisposeAsync();
    }

    private ClusterNodes.Node N(string id) => _cluster.Nodes.Single(n => n.Id == id);

    private static int Index(string id) => id[1] - '1';

    private async Task<TestClient> LoginAsync(string node, string user, string resource, bool presence = true)
    {
        var c = await _cluster.ConnectAsync(Index(node), user, resource, presence);
        _clients.Add(c);
        return c;
    }

    private static Element Join(string nick) =>
        new Element("presence", Ns.Client).SetAttr("to", $"{Room}/{nick}").Add(new Element("x", Ns.Muc));

    private static bool SelfPresence(Element e) =>
        e.Name == "presence" && e.Child("x", Ns.MucUser)?.Elements().Any(s => s.Name == "status" && s.Attr("code") == "110") == true;

    private static bool PresenceOf(Element e, string nick, string? type = null) =>
        e.Name == "presence" && e.Attr("from") == $"{Room}/{nick}" && e.Attr("type") == type;

    private static bool Groupchat(Element e, string body) =>
        e.Name == "message" && e.Attr("type") == "groupchat" && e.ChildText("body", Ns.Client) == body;

    [Test]
    public async Task Room_destroy_run_on_a_node_that_does_not_host_the_room_is_done_by_its_host_and_the_occupants_are_told()
    {
        // alice on n1 makes the room (n1 hosts it) and bob on n2 joins; the administrator runs the command on n3.
        var alice = await LoginAsync("n1", "alice", "desk");
        await alice.SendAsync(Join("alice"));
        await alice.ReceiveAsync(SelfPresence);
        var form = new Element("x", "jabber:x:data").SetAttr("type", "submit")
            .Add(Field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"))
            .Add(Field("muc#roomconfig_persistentroom", "1"));
        var configured = await alice.IqAsync(new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("to", Room)
            .Add(new Element("query", Ns.MucOwner).Add(form)));
        Assert.That(configured.Attr("type"), Is.EqualTo("result"), configured.ToString());
        var bob = await LoginAsync("n2", "bob", "laptop");
        await bob.SendAsync(Join("bob"));
        await bob.ReceiveAsync(SelfPresence);

        var (code, output) = await _cluster.CliAsync(2, "room", "destroy", Room, "closing time");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain($"destroyed {Room}"));
        // XEP-0045 §10.9: every occupant, on whichever node, gets its unavailable presence with the destroy and reason.
        foreach (var c in new[] { alice, bob })
        {
            var gone = await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "unavailable"
                && e.Child("x", Ns.MucUser)?.Child("destroy", Ns.MucUser) is not null, TimeSpan.FromSeconds(10));
            Assert.That(gone.Child("x", Ns.MucUser)!.Child("destroy", Ns.MucUser)!.ChildText("reason", Ns.MucUser), Is.EqualTo("closing time"));
        }
        var (_, again) = await _cluster.CliAsync(0, "room", "destroy", Room);
        Assert.That(again, Does.Contain($"{Room} does not exist"), "gone for every node");
    }

    [Test]
    public async Task A_room_has_occupants_on_all_three_nodes_survives_its_hosts_death_and_the_occupants_rejoin()
    {
        // alice on n1 makes the room (so n1 hosts it), persistent and titled; bob on n2 and carol on n3 join.
        var alice = await LoginAsync("n1", "alice", "desk");
        await alice.SendAsync(Join("alice"));
        await alice.ReceiveAsync(SelfPresence);
        var form = new Element("x", "jabber:x:data").SetAttr("type", "submit")
            .Add(Field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"))
            .Add(Field("muc#roomconfig_persistentroom", "1"))
            .Add(Field("muc#roomconfig_roomname", "Lobby"));
        var configured = await alice.IqAsync(new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("to", Room)
            .Add(new Element("query", Ns.MucOwner).Add(form)));
        Assert.That(configured.Attr("type"), Is.EqualTo("result"), configured.ToString());

        var bob = await LoginAsync("n2", "bob", "laptop");
        await bob.SendAsync(Join("bob"));
        await bob.ReceiveAsync(e => PresenceOf(e, "alice"));
        await bob.ReceiveAsync(SelfPresence);
        await alice.ReceiveAsync(e => PresenceOf(e, "bob"));
        var carol = await LoginAsync("n3", "carol", "phone");
        await carol.SendAsync(Join("carol"));
        await carol.ReceiveAsync(SelfPresence);
        await alice.ReceiveAsync(e => PresenceOf(e, "carol"));
        await bob.ReceiveAsync(e => PresenceOf(e, "carol"));

        // Group chat both ways, and a private message between occupants on two other nodes than the host.
        await bob.SendAsync($"<message to='{Room}' type='groupchat' id='g1'><body>hello from n2</body></message>");
        foreach (var c in new[] { alice, bob, carol }) await c.ReceiveAsync(e => Groupchat(e, "hello from n2"));
        await alice.SendAsync($"<message to='{Room}' type='groupchat' id='g2'><body>hello from n1</body></message>");
        foreach (var c in new[] { alice, bob, carol }) await c.ReceiveAsync(e => Groupchat(e, "hello from n1"));
        await carol.SendAsync($"<message to='{Room}/bob' type='chat' id='p1'><body>psst</body><x xmlns='{Ns.MucUser}'/></message>");
        var pm = await bob.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "psst");
        Assert.That(pm.Attr("from"), Is.EqualTo($"{Room}/carol"));

        // carol's node dies: the host (n1) drops her, and the others see her leave.
        N("n3").Process!.KillHard();
        await alice.ReceiveAsync(e => PresenceOf(e, "carol", "unavailable"), TimeSpan.FromSeconds(LeaseSeconds + 8));
        await bob.ReceiveAsync(e => PresenceOf(e, "carol", "unavailable"), TimeSpan.FromSeconds(3));

        // The host dies. bob's self-ping (XEP-0410 §3) gets no answer while n1 still counts as alive, then
        // not-acceptable from n2, which took the room over from PostgreSQL without its in-memory occupants.
        N("n1").Process!.KillHard();
        string? condition = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(LeaseSeconds + 10);
        while (condition is null && DateTime.UtcNow < deadline)
        {
            var id = "sp" + Guid.NewGuid().ToString("N")[..6];
            await bob.SendAsync($"<iq type='get' to='{Room}/bob' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>");
            var answer = await bob.TryReceiveAsync(e => e.Name == "iq" && e.Attr("id") == id, TimeSpan.FromSeconds(1));
            condition = answer?.Child("error", Ns.Client)?.Elements().FirstOrDefault(e => e.Namespace == Ns.StanzaErrors)?.Name
                        ?? (answer is null ? null : "result");
        }
        Assert.That(condition, Is.EqualTo("not-acceptable"), "the self-ping tells bob to rejoin");

        // bob rejoins: the room kept its configuration and its history (the room archive, MAM on the room).
        await bob.SendAsync(Join("bob"));
        var history = new List<string>();
        await bob.ReceiveAsync(e =>
        {
            if (e.Name == "message" && e.ChildText("body", Ns.Client) is { } body) history.Add(body);
            return SelfPresence(e);
        });
        var subject = await bob.ReceiveAsync(e => e.Name == "message" && e.Child("subject", Ns.Client) is not null);
        history.AddRange(await DrainBodies(bob));
        Assert.That(history, Does.Contain("hello from n2").And.Contain("hello from n1"), "history after the takeover: " + string.Join(", ", history));
        var info = await bob.IqAsync($"<iq type='get' to='{Room}'><query xmlns='{Ns.DiscoInfo}'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)?.Child("identity", Ns.DiscoInfo)?.Attr("name"), Is.EqualTo("Lobby"));
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Elements().Any(f => f.Attr("var") == "muc_persistent"), info.ToString());
        await bob.SendAsync($"<iq type='set' to='{Room}' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>");
        var archived = new List<string>();
        var fin = await bob.ReceiveAsync(e =>
        {
            if (e.Name == "message" && e.Child("result", "urn:xmpp:mam:2") is { } r)
                archived.Add(r.Child("forwarded", Ns.Forward)?.Child("message", Ns.Client)?.ChildText("body", Ns.Client) ?? "");
            return e.Name == "iq" && e.Attr("id") == "mam1";
        });
        Assert.That(fin.Attr("type"), Is.EqualTo("result"), fin.ToString());
        Assert.That(archived, Is.EqualTo(new[] { "hello from n2", "hello from n1" }), "the room archive kept both, once each");
        Assert.That(subject, Is.Not.Null);
    }

    private static async Task<List<string>> DrainBodies(TestClient c) =>
        (await c.DrainAsync(TimeSpan.FromMilliseconds(300))).Where(e => e.Name == "message")
            .Select(e => e.ChildText("body", Ns.Client)).OfType<string>().ToList();

    private static Element Field(string var, string value) =>
        new Element("field", "jabber:x:data").SetAttr("var", var).Add(new Element("value", "jabber:x:data").SetText(value));

    // ---- Stream management across nodes (XEP-0198 §5) ----

    private async Task<(TestClient Client, string Id)> ManagedAsync(string node, string user, string resource)
    {
        var c = await LoginAsync(node, user, resource, presence: false);
        await c.SendAsync(new Element("enable", Ns.StreamManagement).SetAttr("resume", "true"));
        var enabled = await c.ReceiveAsync(e => e.Name == "enabled");
        return (c, enabled.Attr("id")!);
    }

    private async Task<TestClient> ResumeOnAsync(string node, string user)
    {
        var c = await TestClient.OpenAsync(N(node).Endpoint);
        _clients.Add(c);
        await c.AuthenticateAsync(user, ClusterNodes.Password);
        return c;
    }

    [Test]
    public async Task Resumption_on_another_node_hands_the_session_over_while_the_old_node_lives()
    {
        var (alice, id) = await ManagedAsync("n1", "alice", "phone");
        Assert.That(id, Does.Contain("."), "the SM-ID names its node after the random part");
        var bob = await LoginAsync("n1", "bob", "desk");
        for (int i = 1; i <= 3; i++)
            await bob.SendAsync($"<message to='alice@localhost/phone' type='chat' id='m{i}'><body>m{i}</body></message>");
        for (int i = 1; i <= 3; i++) await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == $"m{i}");
        alice.Abort(); // the connection breaks; alice had acknowledged only m1

        var again = await ResumeOnAsync("n2", "alice");
        await again.SendAsync(new Element("resume", Ns.StreamManagement).SetAttr("previd", id).SetAttr("h", "1"));
        var resumed = await again.ReadElementAsync();
        Assert.That(resumed.Is("resumed", Ns.StreamManagement), resumed.ToString());
        Assert.That(resumed.Attr("h"), Is.EqualTo("0"), "alice had sent nothing");
        again.StartReading();
        var got = (await again.DrainAsync(TimeSpan.FromSeconds(2))).Where(e => e.Name == "message").Select(e => e.Attr("id")).ToList();
        Assert.That(got, Is.EqualTo(new[] { "m2", "m3" }), "the unacknowledged messages, once each");

        // The session now lives on n2: a message from a user on n2 reaches it there, and the count goes on from 3.
        var carol = await LoginAsync("n2", "carol", "tab");
        await carol.SendAsync("<message to='alice@localhost/phone' type='chat' id='c1'><body>c1</body></message>");
        await again.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "c1");
        await again.SendAsync(new Element("a", Ns.StreamManagement).SetAttr("h", "4"));
        await again.SendAsync(new Element("r", Ns.StreamManagement));
        var ack = await again.ReceiveAsync(e => e.Name == "a");
        Assert.That(ack.Attr("h"), Is.EqualTo("0"));
        Assert.That(N("n1").Process!.Output, Does.Contain("Handed alice@localhost/phone over to node n2 (2 unacknowledged stanzas)"));

        // A second break, and a resumption on the third node: n1 (named in the SM-ID) says the session moved to n2,
        // which hands it over; c2, never acknowledged, comes again.
        await carol.SendAsync("<message to='alice@localhost/phone' type='chat' id='c2'><body>c2</body></message>");
        await again.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "c2");
        again.Abort();
        var third = await ResumeOnAsync("n3", "alice");
        await third.SendAsync(new Element("resume", Ns.StreamManagement).SetAttr("previd", id).SetAttr("h", "4"));
        var resumedAgain = await third.ReadElementAsync();
        Assert.That(resumedAgain.Is("resumed", Ns.StreamManagement), resumedAgain.ToString());
        third.StartReading();
        var gotAgain = (await third.DrainAsync(TimeSpan.FromSeconds(2))).Where(e => e.Name == "message").Select(e => e.Attr("id")).ToList();
        Assert.That(gotAgain, Is.EqualTo(new[] { "c2" }));

        // And back to n1, which issued the SM-ID and handed the session away, this time inside a SASL2 <authenticate/>
        // (XEP-0388 with XEP-0198): n1 follows the session to n3 and takes it back.
        await carol.SendAsync("<message to='alice@localhost/phone' type='chat' id='c3'><body>c3</body></message>");
        await third.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "c3");
        third.Abort();
        var back = await TestClient.OpenAsync(N("n1").Endpoint);
        _clients.Add(back);
        var (outcome, _) = await back.ScramAsync("alice", ClusterNodes.Password,
            extend: a => a.Add(new Element("resume", Ns.StreamManagement).SetAttr("previd", id).SetAttr("h", "5")));
        Assert.That(outcome.Is("success", Ns.Sasl2), outcome.ToString());
        Assert.That(outcome.Child("resumed", Ns.StreamManagement), Is.Not.Null, outcome.ToString());
        back.StartReading();
        var gotBack = (await back.DrainAsync(TimeSpan.FromSeconds(2))).Where(e => e.Name == "message").Select(e => e.Attr("id")).ToList();
        Assert.That(gotBack, Is.EqualTo(new[] { "c3" }));
    }

    [Test]
    public async Task Resumption_after_the_old_node_died_fails_with_item_not_found_and_the_client_catches_up_from_the_spool_and_mam()
    {
        var (alice, id) = await ManagedAsync("n1", "alice", "phone");
        var bob = await LoginAsync("n1", "bob", "desk");
        await bob.SendAsync("<message to='alice@localhost/phone' type='chat' id='m1'><body>before the crash</body></message>");
        // bob's ping is answered after what he sent before it is stored (archive included): the message is acknowledged.
        Assert.That((await bob.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")).Attr("type"), Is.EqualTo("result"));
        await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m1");
        N("n1").Process!.KillHard();
        alice.Abort();

        var again = await ResumeOnAsync("n2", "alice");
        await again.SendAsync(new Element("resume", Ns.StreamManagement).SetAttr("previd", id).SetAttr("h", "0"));
        var failed = await again.ReadElementAsync(TimeSpan.FromSeconds(10));
        Assert.That(failed.Is("failed", Ns.StreamManagement), failed.ToString());
        Assert.That(failed.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null, failed.ToString());

        // Once n1 counts as gone, a message to alice goes to the offline spool; she binds anew and gets it, and the
        // message she never acknowledged on n1 is in her archive.
        await Task.Delay(TimeSpan.FromSeconds(LeaseSeconds + 1));
        var carol = await LoginAsync("n3", "carol", "tab");
        await carol.SendAsync("<message to='alice@localhost' type='chat' id='m2'><body>while she was away</body></message>");
        await Task.Delay(500);
        await again.BindAsync("phone");
        again.StartReading();
        await again.SendAsync(new Element("presence", Ns.Client));
        var spooled = await again.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m2");
        Assert.That(spooled.Child("delay", Ns.Delay), Is.Not.Null, "from the offline spool");
        await again.SendAsync($"<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>");
        var archived = new List<string>();
        await again.ReceiveAsync(e =>
        {
            if (e.Name == "message" && e.Child("result", "urn:xmpp:mam:2") is { } r)
                archived.Add(r.Child("forwarded", Ns.Forward)?.Child("message", Ns.Client)?.ChildText("body", Ns.Client) ?? "");
            return e.Name == "iq" && e.Attr("id") == "mam1";
        });
        Assert.That(archived, Does.Contain("before the crash"));
    }
}
