using System.Security.Cryptography;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Pep;
using Xmpp.Tests.Support;
using static Xmpp.Tests.Cluster.ClusterSteps;

namespace Xmpp.Tests.Cluster;

/// Per-account caches stay coherent across nodes (issue 17, point 1): one account with resources on two nodes
/// changes its data through one node, and the other node acts on the change at once, not on what it had cached.
/// Every test first makes the second node cache the old value, so a missing invalidation fails it.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterCacheTests : ClusterFixture
{
    private const int Strangers = 8;
    private const int RaceRounds = 24;

    private static readonly string[] Users =
        ["rita", "ross", "bea", "sid", "olga", "pete", "vera", "mia", "sam", "portia", "lena", "kai", "nina", "tara",
         .. Enumerable.Range(0, Strangers).SelectMany(i => new[] { $"suitor{i}", $"friend{i}" }),
         .. Enumerable.Range(0, RaceRounds).Select(i => $"rc{i}")];
    private const string CapsNode = "https://example.org/cluster-client";
    private const string PepNode = "urn:example:cluster-mood";

    private readonly HashSet<int> _capsResolvedOn = [];

    protected override Task<ClusterNodes> StartAsync() =>
        ClusterNodes.StartAsync(Users);

    /// RFC 6121 §3.1: watcher asks owner for a subscription and owner (through ownerClient) approves it.
    private static async Task SubscribeAsync(TestClient watcher, TestClient ownerClient)
    {
        var owner = ownerClient.Jid!.Bare.ToString();
        await watcher.SendAsync($"<presence to='{owner}' type='subscribe'/>");
        await ownerClient.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == watcher.Jid!.Bare.ToString());
        await ownerClient.SendAsync($"<presence to='{watcher.Jid!.Bare}' type='subscribed'/>");
        await watcher.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribed" && e.Attr("from") == owner);
    }

    [Test]
    public async Task A_roster_change_through_one_node_is_in_the_roster_and_presence_routing_of_the_other()
    {
        await using var ritaA = await Cluster.ConnectAsync(0, "rita", "a");
        await using var ritaB = await Cluster.ConnectAsync(1, "rita", "b");
        await using var ross = await Cluster.ConnectAsync(2, "ross", "pc");
        await UntilReachableAsync(ross, ritaA);
        await UntilReachableAsync(ross, ritaB);
        // Node B reads (and caches) rita's empty roster.
        var before = await ritaB.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(before.Child("query", Ns.Roster)!.Elements("item", Ns.Roster), Is.Empty);
        Assert.That((await ritaA.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='ross@localhost' name='Ross'/></query></iq>")).Attr("type"),
            Is.EqualTo("result"));
        var after = await ritaB.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        var item = after.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).SingleOrDefault();
        Assert.That(item?.Attr("jid"), Is.EqualTo("ross@localhost"), "node B's roster get shows the item added through node A");
        Assert.That(item!.Attr("name"), Is.EqualTo("Ross"));

        // Ross subscribes, rita approves through node A; node B then broadcasts rita/b's presence to ross (RFC 6121
        // §4.2.2: to every contact with a subscription 'from'), which it decides from the roster it holds.
        await SubscribeAsync(ross, ritaA);
        await ross.DrainAsync(TimeSpan.FromMilliseconds(200));
        await ritaB.SendAsync("<presence><show>dnd</show><status>through node B</status></presence>");
        var presence = await ross.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "rita@localhost/b" && e.ChildText("show", Ns.Client) == "dnd",
            TimeSpan.FromSeconds(5));
        Assert.That(presence.ChildText("status", Ns.Client), Is.EqualTo("through node B"));
    }

    [Test]
    public async Task A_block_made_through_one_node_stops_the_next_message_routed_by_another_at_once()
    {
        await using var beaA = await Cluster.ConnectAsync(0, "bea", "a");
        await using var beaB = await Cluster.ConnectAsync(1, "bea", "b");
        await using var sid = await Cluster.ConnectAsync(1, "sid", "pc");
        await UntilReachableAsync(sid, beaA);
        // Node B routes sid's message and reads (and caches) bea's empty blocklist.
        await sid.SendAsync(Chat("bea@localhost/a", "before the block"));
        await beaA.ReceiveAsync(e => Body(e) == "before the block");
        Assert.That((await beaA.IqAsync("<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='sid@localhost'/></block></iq>")).Attr("type"),
            Is.EqualTo("result"));
        // XEP-0191 §3.5: from the block on, the blocked entity's messages are not delivered; the sender gets an error.
        await sid.SendAsync(Chat("bea@localhost/a", "right after the block"));
        var error = await sid.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error", TimeSpan.FromSeconds(5));
        Assert.That(error.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo("service-unavailable"));
        Assert.That(await beaA.TryReceiveAsync(e => Body(e) == "right after the block", TimeSpan.FromMilliseconds(700)), Is.Null,
            "the message routed by node B was delivered although the block was already acknowledged");
        Assert.That(await beaB.TryReceiveAsync(e => Body(e) == "right after the block", TimeSpan.FromMilliseconds(100)), Is.Null);
    }

    /// A disco#info answer with +notify for the test node, and its XEP-0115 sha-1 verification string.
    private static (Element Query, string Ver) ClientInfo(params string[] more)
    {
        var query = new Element("query", Ns.DiscoInfo)
            .Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "client").SetAttr("type", "pc").SetAttr("name", "cluster-test"));
        foreach (var f in new[] { Ns.DiscoInfo, Ns.Caps, PepNode + "+notify" }.Concat(more))
            query.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
        return (query, PepCaps.VerificationString(query, "sha-1")!);
    }

    /// Available presence with caps; the first client on each node answers that node's disco#info query (XEP-0115 §6.2).
    private async Task<TestClient> OnlineWithCapsAsync(int node, string user, string resource)
    {
        var c = await Cluster.ConnectAsync(node, user, resource, presence: false);
        var (info, ver) = ClientInfo();
        await c.SendAsync($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>");
        if (_capsResolvedOn.Add(node))
        {
            var q = await c.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get" && e.Child("query", Ns.DiscoInfo) is not null);
            var answer = info.Clone().SetAttr("node", CapsNode + "#" + ver);
            await c.SendAsync(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", q.Attr("id")).SetAttr("to", q.Attr("from")).Add(answer));
        }
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private static Task<Element> Items(TestClient c, string owner) =>
        c.IqAsync($"<iq type='get' to='{owner}'><pubsub xmlns='{Ns.PubSub}'><items node='{PepNode}'/></pubsub></iq>");

    [Test]
    public async Task A_pep_publish_through_one_node_is_returned_by_another_and_notifies_a_contact_on_the_third()
    {
        await using var olgaA = await OnlineWithCapsAsync(0, "olga", "a");
        await using var olgaB = await OnlineWithCapsAsync(1, "olga", "b");
        await using var pete = await OnlineWithCapsAsync(2, "pete", "pc");
        await UntilReachableAsync(pete, olgaA);
        await SubscribeAsync(pete, olgaA);
        // Node B loads (and caches) olga's PEP nodes, none yet.
        Assert.That((await Items(olgaB, "olga@localhost")).Attr("type"), Is.EqualTo("error"));
        var published = await olgaA.IqAsync(
            $"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='{PepNode}'><item id='first'><mood xmlns='urn:example:m'>calm</mood></item></publish></pubsub></iq>");
        Assert.That(published.Attr("type"), Is.EqualTo("result"));
        // XEP-0163 §4: the contact with a subscription and +notify in its caps gets the event, wherever it is connected.
        var notification = await pete.ReceiveAsync(e => e.Name == "message" && e.Child("event", Ns.PubSubEvent) is not null, TimeSpan.FromSeconds(5));
        Assert.That(notification.Attr("from"), Is.EqualTo("olga@localhost"));
        Assert.That(notification.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!.Attr("id"), Is.EqualTo("first"));
        // XEP-0060 §6.5: the items request through node B returns the item published through node A.
        var items = await Items(olgaB, "olga@localhost");
        Assert.That(items.Attr("type"), Is.EqualTo("result"), "node B answered from its stale copy of olga's nodes");
        Assert.That(items.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Elements("item", Ns.PubSub).Select(i => i.Attr("id")),
            Is.EqualTo(new[] { "first" }));
        // And a second publish replaces what node B now holds again.
        await olgaA.IqAsync(
            $"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='{PepNode}'><item id='second'><mood xmlns='urn:example:m'>happy</mood></item></publish></pubsub></iq>");
        var again = await Items(olgaB, "olga@localhost");
        Assert.That(again.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Elements("item", Ns.PubSub).Select(i => i.Attr("id")),
            Does.Contain("second"));
    }

    /// Answers one disco#info query for its caps node with info (XEP-0115 §6.2); returns who asked.
    private static async Task<string?> AnswerCapsQueryAsync(TestClient c, Element info, string ver)
    {
        var q = await c.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get" && e.Child("query", Ns.DiscoInfo) is not null, TimeSpan.FromSeconds(5));
        await c.SendAsync(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", q.Attr("id")).SetAttr("to", q.Attr("from"))
            .Add(info.Clone().SetAttr("node", CapsNode + "#" + ver)));
        return q.Attr("from");
    }

    [Test]
    public async Task A_pep_publish_notifies_a_contact_on_another_node_whose_caps_no_client_of_the_publishing_node_has_sent()
    {
        await using var lena = await OnlineWithCapsAsync(0, "lena", "a");
        // Kai's client is the only one anywhere with this verification string: node C resolves it at his presence;
        // node A, which handles lena's publish, has never seen it (caps are cached per node, by hash).
        var (info, ver) = ClientInfo("urn:example:only-kai");
        await using var kai = await Cluster.ConnectAsync(2, "kai", "phone", presence: false);
        await kai.SendAsync($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>");
        await AnswerCapsQueryAsync(kai, info, ver);
        await kai.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == kai.Jid!.ToString());
        await UntilReachableAsync(kai, lena);
        await SubscribeAsync(kai, lena);
        await kai.DrainAsync(TimeSpan.FromMilliseconds(200));

        Assert.That((await lena.IqAsync(
            $"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='{PepNode}'><item id='k1'><mood xmlns='urn:example:m'>curious</mood></item></publish></pubsub></iq>")).Attr("type"),
            Is.EqualTo("result"));
        // XEP-0163 §4.2 with XEP-0115 §6.2: node A asks kai's resource once, then sends the event it wants.
        Assert.That(await AnswerCapsQueryAsync(kai, info, ver), Is.EqualTo("localhost"));
        var first = await kai.ReceiveAsync(e => e.Name == "message" && e.Child("event", Ns.PubSubEvent) is not null, TimeSpan.FromSeconds(5));
        Assert.That(first.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!.Attr("id"), Is.EqualTo("k1"));

        // The verified hash is cached on node A now: the next event comes without another query.
        await lena.IqAsync(
            $"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='{PepNode}'><item id='k2'><mood xmlns='urn:example:m'>calm</mood></item></publish></pubsub></iq>");
        var next = await kai.ReceiveAsync(e => (e.Name == "message" && e.Child("event", Ns.PubSubEvent) is not null) || e.Name == "iq", TimeSpan.FromSeconds(5));
        Assert.That(next.Name, Is.EqualTo("message"), "node A asked for caps it had already verified");
        Assert.That(next.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!.Attr("id"), Is.EqualTo("k2"));
    }

    [Test]
    public async Task Pep_nodes_created_and_deleted_through_two_nodes_at_once_all_stay_in_the_accounts_node_list()
    {
        await using var ninaA = await Cluster.ConnectAsync(0, "nina", "a");
        await using var ninaB = await Cluster.ConnectAsync(1, "nina", "b");
        await using var ninaC = await Cluster.ConnectAsync(2, "nina", "c");
        static string Create(string node) =>
            $"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><create node='{node}'/></pubsub></iq>";
        static string Delete(string node) =>
            $"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><delete node='{node}'/></pubsub></iq>";
        // Each round, one node through A and one through B at the same moment: each node's account gate is its own,
        // so only the stored list's read-modify-write keeps both (before, each wrote the list it had cached).
        const int Rounds = 12;
        for (int i = 0; i < Rounds; i++)
        {
            var both = await Task.WhenAll(ninaA.IqAsync(Create($"urn:example:a{i}")), ninaB.IqAsync(Create($"urn:example:b{i}")));
            Assert.That(both.Select(r => r.Attr("type")), Is.All.EqualTo("result"));
        }
        // Then deletes of half of them, again in pairs.
        for (int i = 0; i < Rounds; i += 2)
        {
            var both = await Task.WhenAll(ninaA.IqAsync(Delete($"urn:example:a{i}")), ninaB.IqAsync(Delete($"urn:example:b{i}")));
            Assert.That(both.Select(r => r.Attr("type")), Is.All.EqualTo("result"));
        }
        // XEP-0163 §3 / XEP-0030: node C lists the account's nodes from the stored list.
        var items = await ninaC.IqAsync($"<iq type='get' to='nina@localhost'><query xmlns='{Ns.DiscoItems}'/></iq>");
        var listed = items.Child("query", Ns.DiscoItems)!.Elements("item", Ns.DiscoItems).Select(e => e.Attr("node")).Order().ToList();
        var expected = Enumerable.Range(0, Rounds).Where(i => i % 2 == 1).SelectMany(i => new[] { $"urn:example:a{i}", $"urn:example:b{i}" }).Order().ToList();
        Assert.That(listed, Is.EqualTo(expected));
    }

    [Test]
    public async Task Subscription_requests_crossing_through_two_nodes_at_once_both_stay_in_the_roster_item()
    {
        // Tara on node A asks each contact for a subscription while that contact, on node B, asks tara at the same
        // moment: node A writes tara's item for the contact (ask, RFC 6121 §3.1.2) and node B the same item (the
        // pending inbound request, §3.1.3). Each is a read-modify-write of one item; before, the later write was
        // computed from what its node had read before the other's, and dropped it.
        await using var taraA = await Cluster.ConnectAsync(0, "tara", "a");
        var contacts = new List<TestClient>();
        try
        {
            for (int i = 0; i < RaceRounds; i++) contacts.Add(await Cluster.ConnectAsync(1, $"rc{i}", "pc"));
            await UntilReachableAsync(contacts[0], taraA);
            for (int i = 0; i < RaceRounds; i++)
            {
                var contact = contacts[i];
                await Task.WhenAll(taraA.SendAsync($"<presence to='rc{i}@localhost' type='subscribe'/>"),
                    contact.SendAsync("<presence to='tara@localhost' type='subscribe'/>"));
                await taraA.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == $"rc{i}@localhost", TimeSpan.FromSeconds(5));
                await contact.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == "tara@localhost", TimeSpan.FromSeconds(5));
            }
            // §2.1.2.2: tara's own request shows as ask='subscribe' on every item.
            var roster = await taraA.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
            var asked = roster.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).Where(e => e.Attr("ask") == "subscribe")
                .Select(e => e.Attr("jid")).Order().ToList();
            Assert.That(asked, Is.EqualTo(Enumerable.Range(0, RaceRounds).Select(i => $"rc{i}@localhost").Order().ToList()),
                "an outbound request was lost from tara's items");
            // §3.1.3: every contact's request is still pending, so a resource that comes online gets each again.
            await using var taraC = await Cluster.ConnectAsync(2, "tara", "c");
            var pending = new HashSet<string>();
            while (pending.Count < RaceRounds
                   && await taraC.TryReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", TimeSpan.FromSeconds(3)) is { } request)
                pending.Add(request.Attr("from")!);
            Assert.That(pending.Order().ToList(), Is.EqualTo(Enumerable.Range(0, RaceRounds).Select(i => $"rc{i}@localhost").Order().ToList()),
                "an inbound request was lost from tara's items");
        }
        finally
        {
            foreach (var c in contacts) await c.DisposeAsync();
        }
    }

    [Test]
    public async Task An_avatar_set_through_one_node_changes_the_hash_the_other_node_stamps_into_presence()
    {
        await using var veraA = await Cluster.ConnectAsync(0, "vera", "a");
        await using var veraB = await Cluster.ConnectAsync(1, "vera", "b", presence: false);
        // Node B stamps (and caches) vera's avatar hash: none yet. Her other resource receives the presence.
        await veraB.SendAsync("<presence/>");
        var first = await veraA.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "vera@localhost/b", TimeSpan.FromSeconds(5));
        Assert.That(first.Child("x", Ns.VCardUpdate), Is.Null);
        var photo = RandomNumberGenerator.GetBytes(300);
        var set = await veraA.IqAsync($"<iq type='set'><vCard xmlns='vcard-temp'><FN>Vera</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>{Convert.ToBase64String(photo)}</BINVAL></PHOTO></vCard></iq>");
        Assert.That(set.Attr("type"), Is.EqualTo("result"));
        // XEP-0153 §4.1: presence without the update element gets the hash of the stored photo.
        await veraB.SendAsync("<presence><show>away</show></presence>");
        var second = await veraA.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "vera@localhost/b" && e.ChildText("show", Ns.Client) == "away",
            TimeSpan.FromSeconds(5));
        Assert.That(second.Child("x", Ns.VCardUpdate)?.ChildText("photo", Ns.VCardUpdate), Is.EqualTo(Convert.ToHexStringLower(SHA1.HashData(photo))));
    }

    [Test]
    public async Task Mam_preferences_set_through_one_node_decide_archiving_of_a_message_routed_by_another()
    {
        await using var miaA = await Cluster.ConnectAsync(0, "mia", "a");
        await using var miaB = await Cluster.ConnectAsync(1, "mia", "b");
        await using var sam = await Cluster.ConnectAsync(1, "sam", "pc");
        await UntilReachableAsync(sam, miaA);
        // Node B routes sam's message, reads (and caches) mia's preferences: the default, archive always.
        await sam.SendAsync(Chat("mia@localhost/a", "archived"));
        await miaA.ReceiveAsync(e => Body(e) == "archived");
        var prefs = await miaA.IqAsync("<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>");
        Assert.That(prefs.Attr("type"), Is.EqualTo("result"));
        await sam.SendAsync(Chat("mia@localhost/a", "not archived"));
        await miaA.ReceiveAsync(e => Body(e) == "not archived");
        await Task.Delay(300); // archive writes are queued; a query waits for the account's, but give the other node's time
        // XEP-0313 §4: mia's archive holds the first message only (XEP-0441: 'never' archives nothing from now on).
        await miaA.SendAsync("<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='f1'/></iq>");
        var bodies = new List<string?>();
        while (true)
        {
            var e = await miaA.ReceiveAsync(x => (x.Name == "message" && x.Child("result", Ns.Mam) is not null) || (x.Name == "iq" && x.Attr("id") == "q1"));
            if (e.Name == "iq")
            {
                Assert.That(e.Attr("type"), Is.EqualTo("result"));
                break;
            }
            bodies.Add(Body(e.Child("result", Ns.Mam)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!));
        }
        Assert.That(bodies, Does.Contain("archived"));
        Assert.That(bodies, Does.Not.Contain("not archived"), "node B archived with the preferences it had cached");
    }

    // Message requests keep one state document per account (accepted strangers, waiting requests). portia, with requests
    // on, accepts eight strangers by writing to them through n1 while eight others' first messages are held through
    // n2, all at once: each node's change is read-modify-written in the store (IKeyValueStore.UpdateAsync), so both
    // nodes' changes are kept. Written whole from each node's copy, one node's changes overwrote the other's.
    [Test]
    public async Task Two_nodes_changing_one_accounts_message_requests_at_once_both_keep_their_change()
    {
        const string settings = "urn:xmppd:message-requests#settings";
        await using var portia = await Cluster.ConnectAsync(0, "portia", "pc");
        var first = await portia.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Ns.Commands}' node='{settings}' action='execute'/></iq>");
        var done = await portia.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Ns.Commands}' node='{settings}' "
            + $"sessionid='{first.Child("command", Ns.Commands)!.Attr("sessionid")}' action='complete'><x xmlns='jabber:x:data' type='submit'>"
            + "<field var='enabled'><value>1</value></field></x></command></iq>");
        Assert.That(done.Child("command", Ns.Commands)?.Attr("status"), Is.EqualTo("completed"), done.ToString());
        var suitors = await Task.WhenAll(Enumerable.Range(0, Strangers).Select(i => Cluster.ConnectAsync(1, $"suitor{i}", "pc")));
        var friends = await Task.WhenAll(Enumerable.Range(0, Strangers).Select(i => Cluster.ConnectAsync(1, $"friend{i}", "pc")));
        try
        {
            // n1 accepts the friends (portia writes to each) while n2 holds the suitors' messages (each a new request).
            Task[] atOnce =
            [
                Task.Run(async () =>
                {
                    for (int i = 0; i < Strangers; i++) await portia.SendAsync(Chat($"friend{i}@localhost", "Welcome, friend " + i));
                    await portia.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
                }),
                .. suitors.Select(async (s, i) =>
                {
                    await s.SendAsync(Chat("portia@localhost", "Choose my casket " + i));
                    await s.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
                }),
            ];
            await Task.WhenAll(atOnce);
            // Every suitor's request waits (listed through either node)...
            var list = await portia.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Ns.Commands}' node='urn:xmppd:message-requests#list' action='execute'/></iq>");
            var waiting = list.Child("command", Ns.Commands)!.Child("x", "jabber:x:data")!.Elements("field", "jabber:x:data")
                .Select(f => f.Attr("var")).Where(v => v?.StartsWith("suitor", StringComparison.Ordinal) == true).Order(StringComparer.Ordinal).ToList();
            Assert.That(waiting, Is.EqualTo(Enumerable.Range(0, Strangers).Select(i => $"suitor{i}@localhost").Order(StringComparer.Ordinal)),
                "the requests held through n2");
            // ...and every friend is accepted: their messages through n2 arrive at once, none held as a request.
            foreach (var (f, i) in friends.Select((f, i) => (f, i))) await f.SendAsync(Chat("portia@localhost", "Thanks " + i));
            var arrived = new List<string>();
            while (arrived.Count < Strangers && await portia.TryReceiveAsync(e => e.Name == "message" && Body(e)?.StartsWith("Thanks ", StringComparison.Ordinal) == true,
                       TimeSpan.FromSeconds(3)) is { } m)
                arrived.Add(Body(m)!);
            Assert.That(arrived.Order(StringComparer.Ordinal), Is.EqualTo(Enumerable.Range(0, Strangers).Select(i => "Thanks " + i).Order(StringComparer.Ordinal)),
                "the strangers accepted through n1");
        }
        finally
        {
            foreach (var c in suitors.Concat(friends)) await c.DisposeAsync();
        }
    }
}
