using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Pep;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0163 PEP over real sockets: alice publishes; bob is her contact (subscription both), carol a stranger,
/// dave a contact who only has her in his roster without a presence subscription to her.
[TestFixture]
public sealed partial class PepModuleTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);
    private const string CapsNode = "https://example.org/test-client";
    private const string Tune = "http://jabber.org/protocol/tune";

    private TestServer _server = null!;
    private readonly HashSet<string> _resolvedVers = new(StringComparer.Ordinal);

    [SetUp]
    public async Task Start()
    {
        _resolvedVers.Clear();
        _server = await StartServerAsync();
    }

    [TearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private static async Task<TestServer> StartServerAsync(string? dataDir = null, Action<Dictionary<string, string?>>? configure = null,
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null)
    {
        var s = await TestServer.StartAsync(dataDir, configure, services);
        foreach (var user in new[] { "alice", "bob", "carol", "dave" })
            if (!await s.Get<Xmpp.Server.Auth.AccountService>().ExistsAsync(user))
                await s.AddUserAsync(user, user + "-pw");
        await Seed(s, "alice", "bob@localhost", Subscription.Both);
        await Seed(s, "bob", "alice@localhost", Subscription.Both);
        await Seed(s, "alice", "dave@localhost", Subscription.None, "Friends");
        await Seed(s, "dave", "alice@localhost", Subscription.None);
        return s;
    }

    private static async Task Seed(TestServer s, string user, string contact, Subscription subscription, params string[] groups) =>
        await s.Get<IStorage>().Rosters.SetItemAsync(user,
            new RosterItem(contact, null, groups, subscription, AskOut: false, PendingIn: false, PreApproved: false, InRoster: true));

    /// A disco#info answer with the features a client announces, and its XEP-0115 sha-1 verification string.
    private static (Element Query, string Ver) ClientInfo(string[] notify)
    {
        var query = new Element("query", Ns.DiscoInfo)
            .Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "client").SetAttr("type", "pc").SetAttr("name", "test"));
        foreach (var f in new[] { Ns.DiscoInfo, Ns.Caps }.Concat(notify.Select(n => n + "+notify")))
            query.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
        return (query, PepCaps.VerificationString(query, "sha-1")!);
    }

    /// Connects and sends available presence with caps announcing +notify for the given nodes, answering the
    /// server's disco#info query for a verification string it has not seen yet, then waits for its own presence.
    private async Task<TestClient> Online(string user, string resource, params string[] notify) =>
        await Online(_server, user, resource, notify);

    private async Task<TestClient> Online(TestServer server, string user, string resource, params string[] notify)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-pw", resource);
        var (info, ver) = ClientInfo(notify);
        await c.SendAsync($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>");
        if (_resolvedVers.Add(ver)) await AnswerDiscoAsync(c, info, ver);
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private static async Task AnswerDiscoAsync(TestClient c, Element info, string ver)
    {
        var q = await c.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get" && e.Child("query", Ns.DiscoInfo) is not null);
        Assert.That(q.Attr("from"), Is.EqualTo("localhost"));
        Assert.That(q.Child("query", Ns.DiscoInfo)!.Attr("node"), Is.EqualTo(CapsNode + "#" + ver));
        var answer = info.Clone().SetAttr("node", CapsNode + "#" + ver);
        await c.SendAsync(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", q.Attr("id")).SetAttr("to", q.Attr("from")).Add(answer));
    }

    private static string Options(params (string Var, string Value)[] fields)
    {
        var x = $"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{Ns.PubSubPublishOptions}</value></field>";
        foreach (var (v, value) in fields) x += $"<field var='{v}'><value>{value}</value></field>";
        return $"<publish-options>{x}</x></publish-options>";
    }

    private static Task<Element> Publish(TestClient c, string node, string payload, string? id = null, string options = "") =>
        c.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='{node}'><item{(id is null ? "" : $" id='{id}'")}>{payload}</item></publish>{options}</pubsub></iq>");

    private static Task<Element> Items(TestClient c, string owner, string node, string extra = "", string children = "") =>
        c.IqAsync($"<iq type='get' to='{owner}'><pubsub xmlns='{Ns.PubSub}'><items node='{node}' {extra}>{children}</items></pubsub></iq>");

    private static List<string?> ItemIds(Element result) =>
        result.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Elements("item", Ns.PubSub).Select(i => i.Attr("id")).ToList();

    private static Func<Element, bool> Event(string node) => e =>
        e.Name == "message" && e.Child("event", Ns.PubSubEvent)?.Elements().Any(x => x.Attr("node") == node) == true;

    private static void AssertError(Element reply, string condition, string? pubsubCondition = null)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        var error = reply.Child("error", Ns.Client)!;
        Assert.That(error.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
        if (pubsubCondition is not null) Assert.That(error.Child(pubsubCondition, Ns.PubSubErrors), Is.Not.Null, reply.ToString());
    }

    private static string TuneXml(string title) => $"<tune xmlns='{Tune}'><title>{title}</title></tune>";

    // ---- Disco ----

    [Test]
    public async Task Account_disco_info_shows_the_pep_identity_and_the_pubsub_features()
    {
        await using var bob = await Online("bob", "pc");
        var reply = await bob.IqAsync($"<iq type='get' to='alice@localhost'><query xmlns='{Ns.DiscoInfo}'/></iq>");
        var query = reply.Child("query", Ns.DiscoInfo)!;
        Assert.That(X.Matches(query, $"<query xmlns='{Ns.DiscoInfo}'><identity category='pubsub' type='pep'/><identity category='account' type='registered'/></query>"), query.ToString());
        var features = query.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
        Assert.That(features, Does.Contain("http://jabber.org/protocol/pubsub#publish").And.Contain("http://jabber.org/protocol/pubsub#publish-options")
            .And.Contain("http://jabber.org/protocol/pubsub#access-presence").And.Contain("http://jabber.org/protocol/pubsub#access-whitelist"));
        Assert.That(features, Does.Not.Contain("http://jabber.org/protocol/pubsub#subscribe"), "explicit subscriptions are not offered");
    }

    [Test]
    public async Task Disco_items_of_a_bare_jid_list_only_the_nodes_the_asker_may_see()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "open-node", TuneXml("o"), options: Options(("pubsub#access_model", "open")));
        await Publish(alice, "presence-node", TuneXml("p"));
        await Publish(alice, "private-node", TuneXml("w"), options: Options(("pubsub#access_model", "whitelist")));
        await using var bob = await Online("bob", "pc");
        await using var carol = await Online("carol", "pc");

        async Task<List<string?>> Nodes(TestClient c) =>
            (await c.IqAsync($"<iq type='get' to='alice@localhost'><query xmlns='{Ns.DiscoItems}'/></iq>"))
            .Child("query", Ns.DiscoItems)!.Elements("item", Ns.DiscoItems).Select(i => i.Attr("node")).ToList();

        Assert.That(await Nodes(alice), Is.EquivalentTo(new[] { "open-node", "presence-node", "private-node" }));
        Assert.That(await Nodes(bob), Is.EquivalentTo(new[] { "open-node", "presence-node" }));
        Assert.That(await Nodes(carol), Is.EquivalentTo(new[] { "open-node" }));
    }

    // ---- Publishing and retrieval ----

    [Test]
    public async Task Publishing_auto_creates_the_node_and_returns_the_given_or_a_generated_item_id()
    {
        await using var alice = await Online("alice", "pc");
        var first = await Publish(alice, Tune, TuneXml("one"), id: "current");
        Assert.That(X.Matches(first, $"<iq type='result'><pubsub xmlns='{Ns.PubSub}'><publish node='{Tune}'><item id='current'/></publish></pubsub></iq>"), first.ToString());
        var second = await Publish(alice, "another", TuneXml("two"));
        var id = second.Child("pubsub", Ns.PubSub)!.Child("publish", Ns.PubSub)!.Child("item", Ns.PubSub)!.Attr("id");
        Assert.That(id, Is.Not.Null.And.Not.Empty);

        var items = await Items(alice, "alice@localhost", "another");
        Assert.That(ItemIds(items), Is.EqualTo(new[] { id }));
        Assert.That(items.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Child("item", Ns.PubSub)!.Child("tune", Tune)!.ChildText("title", Tune), Is.EqualTo("two"));
    }

    [Test]
    public async Task Max_items_keeps_the_newest_items_and_retrieval_honours_max_items_and_item_ids()
    {
        await using var alice = await Online("alice", "pc");
        for (int i = 1; i <= 4; i++)
            Assert.That((await Publish(alice, "list", TuneXml("t" + i), "i" + i, Options(("pubsub#max_items", "3")))).Attr("type"), Is.EqualTo("result"));

        Assert.That(ItemIds(await Items(alice, "alice@localhost", "list")), Is.EqualTo(new[] { "i2", "i3", "i4" }), "the oldest was dropped");
        Assert.That(ItemIds(await Items(alice, "alice@localhost", "list", "max_items='1'")), Is.EqualTo(new[] { "i4" }));
        Assert.That(ItemIds(await Items(alice, "alice@localhost", "list", children: "<item id='i3'/><item id='i1'/>")), Is.EqualTo(new[] { "i3" }));

        // Republishing an existing id replaces it instead of adding one.
        await Publish(alice, "list", TuneXml("again"), "i2", Options(("pubsub#max_items", "3")));
        Assert.That(ItemIds(await Items(alice, "alice@localhost", "list")), Is.EqualTo(new[] { "i3", "i4", "i2" }));

        // Lowering max_items drops the oldest at once.
        var set = await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='list'><x xmlns='jabber:x:data' type='submit'>" +
            $"<field var='FORM_TYPE' type='hidden'><value>{Ns.PubSubNodeConfig}</value></field><field var='pubsub#max_items'><value>1</value></field></x></configure></pubsub></iq>");
        Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());
        Assert.That(ItemIds(await Items(alice, "alice@localhost", "list")), Is.EqualTo(new[] { "i2" }));
    }

    [Test]
    public async Task Precondition_not_met_is_a_conflict_and_reconfiguring_the_node_lets_the_publish_through()
    {
        await using var alice = await Online("alice", "pc");
        Assert.That((await Publish(alice, "devices", "<list xmlns='urn:test'/>")).Attr("type"), Is.EqualTo("result"));

        var open = Options(("pubsub#access_model", "open"));
        AssertError(await Publish(alice, "devices", "<list xmlns='urn:test'/>", options: open), StanzaErrors.Conflict, "precondition-not-met");

        // What Conversations does next: configure the node as asked, then publish again.
        var config = await alice.IqAsync($"<iq type='get'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='devices'/></pubsub></iq>");
        var form = config.Child("pubsub", Ns.PubSubOwner)!.Child("configure", Ns.PubSubOwner)!.Child("x", Ns.DataForms)!;
        Assert.That(X.Matches(form, "<x xmlns='jabber:x:data' type='form'><field var='pubsub#access_model'><value>presence</value></field></x>"), form.ToString());
        var set = await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='devices'><x xmlns='jabber:x:data' type='submit'>" +
            $"<field var='FORM_TYPE' type='hidden'><value>{Ns.PubSubNodeConfig}</value></field><field var='pubsub#access_model'><value>open</value></field></x></configure></pubsub></iq>");
        Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());
        Assert.That((await Publish(alice, "devices", "<list xmlns='urn:test'/>", options: open)).Attr("type"), Is.EqualTo("result"));
        // Booleans compare by meaning: "1" meets a node with persist_items true.
        Assert.That((await Publish(alice, "devices", "<list xmlns='urn:test'/>", options: Options(("pubsub#persist_items", "1")))).Attr("type"), Is.EqualTo("result"));
    }

    [TestCase("pubsub#no_such_option", "x")]
    [TestCase("pubsub#access_model", "authorize")]
    [TestCase("pubsub#max_items", "1000000")]
    public async Task Publish_options_the_service_cannot_guarantee_fail_with_precondition_not_met(string field, string value)
    {
        await using var alice = await Online("alice", "pc");
        AssertError(await Publish(alice, "fresh", TuneXml("x"), options: Options((field, value))), StanzaErrors.Conflict, "precondition-not-met");
        AssertError(await Items(alice, "alice@localhost", "fresh"), StanzaErrors.ItemNotFound);
    }

    [Test]
    public async Task Malformed_publish_requests_get_the_xep_0060_errors()
    {
        await using var alice = await Online("alice", "pc");
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='n'><item id='1'/></publish></pubsub></iq>"),
            StanzaErrors.BadRequest, "payload-required");
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='n'><item id='1'><a xmlns='urn:a'/><b xmlns='urn:b'/></item></publish></pubsub></iq>"),
            StanzaErrors.BadRequest, "invalid-payload");
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish><item><a xmlns='urn:a'/></item></publish></pubsub></iq>"),
            StanzaErrors.BadRequest, "nodeid-required");
        AssertError(await Items(alice, "alice@localhost", "missing"), StanzaErrors.ItemNotFound);
        await Publish(alice, "n", TuneXml("x"));
        AssertError(await Items(alice, "alice@localhost", "n", "max_items='zero'"), StanzaErrors.BadRequest);
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><subscribe node='n' jid='alice@localhost'/></pubsub></iq>"),
            StanzaErrors.FeatureNotImplemented, "unsupported");
        // XEP-0004 §3.2: a field named twice, or a form without a type, is not a usable form.
        var twice = $"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{Ns.PubSubPublishOptions}</value></field>" +
            "<field var='pubsub#access_model'><value>open</value></field><field var='pubsub#access_model'><value>presence</value></field></x></publish-options>";
        AssertError(await Publish(alice, "n", TuneXml("y"), options: twice), StanzaErrors.BadRequest);
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='n'><x xmlns='jabber:x:data'>" +
            "<field var='pubsub#title'><value>t</value></field></x></configure></pubsub></iq>"), StanzaErrors.BadRequest);
    }

    [Test]
    public async Task Only_the_owner_publishes_retracts_and_manages_nodes()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "n", TuneXml("x"), "1");
        await using var bob = await Online("bob", "pc");
        AssertError(await bob.IqAsync($"<iq type='set' to='alice@localhost'><pubsub xmlns='{Ns.PubSub}'><publish node='n'><item><x xmlns='urn:x'/></item></publish></pubsub></iq>"), StanzaErrors.Forbidden);
        AssertError(await bob.IqAsync($"<iq type='set' to='alice@localhost'><pubsub xmlns='{Ns.PubSub}'><retract node='n'><item id='1'/></retract></pubsub></iq>"), StanzaErrors.Forbidden);
        AssertError(await bob.IqAsync($"<iq type='set' to='alice@localhost'><pubsub xmlns='{Ns.PubSubOwner}'><delete node='n'/></pubsub></iq>"), StanzaErrors.Forbidden);
        AssertError(await bob.IqAsync($"<iq type='get' to='alice@localhost'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='n'/></pubsub></iq>"), StanzaErrors.Forbidden);
        Assert.That(ItemIds(await Items(alice, "alice@localhost", "n")), Is.EqualTo(new[] { "1" }));
    }

    [Test]
    public async Task A_further_new_node_beyond_the_per_account_limit_is_refused_with_resource_constraint()
    {
        await _server.DisposeAsync();
        _server = await StartServerAsync(configure: o => o["Xmpp:Pep:MaxNodesPerAccount"] = "2");
        await using var alice = await Online("alice", "pc");
        Assert.That((await Publish(alice, "a", TuneXml("a"))).Attr("type"), Is.EqualTo("result"));
        Assert.That((await Publish(alice, "b", TuneXml("b"))).Attr("type"), Is.EqualTo("result"));
        AssertError(await Publish(alice, "c", TuneXml("c")), StanzaErrors.ResourceConstraint);
        Assert.That((await Publish(alice, "a", TuneXml("a2"))).Attr("type"), Is.EqualTo("result"), "existing nodes still take items");
    }

    [Test]
    public async Task Max_items_max_means_the_service_limit()
    {
        await _server.DisposeAsync();
        _server = await StartServerAsync(configure: o => o["Xmpp:Pep:MaxItemsPerNode"] = "3");
        await using var alice = await Online("alice", "pc");
        for (int i = 1; i <= 5; i++) await Publish(alice, "many", TuneXml("t"), "i" + i, Options(("pubsub#max_items", "max")));
        Assert.That(ItemIds(await Items(alice, "alice@localhost", "many")), Is.EqualTo(new[] { "i3", "i4", "i5" }));
    }
}
