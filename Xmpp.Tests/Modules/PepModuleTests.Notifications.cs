using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Pep;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

public sealed partial class PepModuleTests
{
    // ---- Access models (XEP-0060 §4.5, §6.5.9) ----

    [Test]
    public async Task Presence_access_lets_subscribed_contacts_read_and_refuses_others()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, Tune, TuneXml("song"), "current");
        await using var bob = await Online("bob", "pc");
        await using var carol = await Online("carol", "pc");
        await using var dave = await Online("dave", "pc");

        Assert.That(ItemIds(await Items(bob, "alice@localhost", Tune)), Is.EqualTo(new[] { "current" }));
        AssertError(await Items(carol, "alice@localhost", Tune), StanzaErrors.NotAuthorized, "presence-subscription-required");
        AssertError(await Items(dave, "alice@localhost", Tune), StanzaErrors.NotAuthorized, "presence-subscription-required");
    }

    [Test]
    public async Task Open_access_lets_anyone_read()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "public", TuneXml("song"), "1", Options(("pubsub#access_model", "open")));
        await using var carol = await Online("carol", "pc");
        Assert.That(ItemIds(await Items(carol, "alice@localhost", "public")), Is.EqualTo(new[] { "1" }));
    }

    [Test]
    public async Task Roster_access_lets_anyone_in_the_owners_roster_read_and_refuses_strangers()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "friends", TuneXml("song"), "1", Options(("pubsub#access_model", "roster")));
        await using var dave = await Online("dave", "pc");
        await using var carol = await Online("carol", "pc");
        Assert.That(ItemIds(await Items(dave, "alice@localhost", "friends")), Is.EqualTo(new[] { "1" }), "dave is in alice's roster without subscription");
        AssertError(await Items(carol, "alice@localhost", "friends"), StanzaErrors.NotAuthorized, "not-in-roster-group");

        // pubsub#roster_groups_allowed narrows it to contacts in the named groups (dave is in "Friends").
        var family = "<field var='pubsub#roster_groups_allowed'><value>Family</value></field>";
        var friends = "<field var='pubsub#roster_groups_allowed'><value>Family</value><value>Friends</value></field>";
        await Configure(alice, "friends", family);
        AssertError(await Items(dave, "alice@localhost", "friends"), StanzaErrors.NotAuthorized, "not-in-roster-group");
        await Configure(alice, "friends", friends);
        Assert.That(ItemIds(await Items(dave, "alice@localhost", "friends")), Is.EqualTo(new[] { "1" }));
    }

    private static async Task Configure(TestClient owner, string node, string fields)
    {
        var r = await owner.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='{node}'><x xmlns='jabber:x:data' type='submit'>" +
            $"<field var='FORM_TYPE' type='hidden'><value>{Ns.PubSubNodeConfig}</value></field>{fields}</x></configure></pubsub></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
    }

    [Test]
    public async Task Whitelist_access_admits_only_the_owner_and_members_the_owner_adds()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "secret", TuneXml("song"), "1", Options(("pubsub#access_model", "whitelist")));
        await using var bob = await Online("bob", "pc");
        AssertError(await Items(bob, "alice@localhost", "secret"), StanzaErrors.NotAllowed, "closed-node");

        var set = await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><affiliations node='secret'><affiliation jid='bob@localhost' affiliation='member'/></affiliations></pubsub></iq>");
        Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());
        Assert.That(ItemIds(await Items(bob, "alice@localhost", "secret")), Is.EqualTo(new[] { "1" }));
        var list = await alice.IqAsync($"<iq type='get'><pubsub xmlns='{Ns.PubSubOwner}'><affiliations node='secret'/></pubsub></iq>");
        Assert.That(X.Matches(list, $"<iq type='result'><pubsub xmlns='{Ns.PubSubOwner}'><affiliations node='secret'><affiliation jid='alice@localhost' affiliation='owner'/><affiliation jid='bob@localhost' affiliation='member'/></affiliations></pubsub></iq>"), list.ToString());

        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><affiliations node='secret'><affiliation jid='carol@localhost' affiliation='publisher'/></affiliations></pubsub></iq>"), StanzaErrors.NotAcceptable);
        await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><affiliations node='secret'><affiliation jid='bob@localhost' affiliation='none'/></affiliations></pubsub></iq>");
        AssertError(await Items(bob, "alice@localhost", "secret"), StanzaErrors.NotAllowed, "closed-node");
    }

    // ---- Notifications (XEP-0163 §4) ----

    [Test]
    public async Task A_publish_notifies_the_owners_and_contacts_resources_that_want_the_node_and_nobody_else()
    {
        await using var alicePc = await Online("alice", "pc", Tune);
        await using var alicePhone = await Online("alice", "phone");
        await using var bob = await Online("bob", "pc", Tune);
        await using var bobWatch = await Online("bob", "watch");
        await using var carol = await Online("carol", "pc", Tune);
        await using var dave = await Online("dave", "pc", Tune);

        await Publish(alicePc, Tune, TuneXml("Yesterday"), "current");

        foreach (var c in new[] { alicePc, bob })
        {
            var n = await c.ReceiveAsync(Event(Tune));
            Assert.That(X.Matches(n, $"<message from='alice@localhost' type='headline'><event xmlns='{Ns.PubSubEvent}'><items node='{Tune}'><item id='current'><tune xmlns='{Tune}'><title>Yesterday</title></tune></item></items></event></message>"), n.ToString());
            Assert.That(n.Attr("to"), Is.EqualTo(c.Jid!.ToString()), "addressed to the full JID (§4.3.1)");
        }
        foreach (var c in new[] { alicePhone, bobWatch, carol, dave })
            Assert.That(await c.TryReceiveAsync(Event(Tune), Quiet), Is.Null, c.Jid + " has no +notify, no subscription or no access");
    }

    [Test]
    public async Task Whitelist_nodes_notify_only_the_owners_resources()
    {
        await using var alicePc = await Online("alice", "pc", "private");
        await using var alicePhone = await Online("alice", "phone", "private");
        await using var bob = await Online("bob", "pc", "private");
        await Publish(alicePc, "private", TuneXml("x"), "1", Options(("pubsub#access_model", "whitelist")));
        Assert.That(await alicePhone.ReceiveAsync(Event("private")), Is.Not.Null);
        Assert.That(await bob.TryReceiveAsync(Event("private"), Quiet), Is.Null);
    }

    [Test]
    public async Task A_known_caps_hash_is_not_queried_again()
    {
        await using var alice = await Online("alice", "pc");
        await using var bob = await Online("bob", "pc", Tune);
        // The server keeps bob's verified features once it has read his answer, which can come after his presence
        // echo: until then a second resource with the same hash is (rightly) queried again.
        var (_, ver) = ClientInfo([Tune]);
        var presence = X.Parse($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>");
        for (int i = 0; i < 500 && _server.Get<PepCaps>().Known(bob.Jid!, presence) is null; i++) await Task.Delay(10);
        int queries = _server.Get<PepCaps>().Queries;
        // Same features, same verification string: the helper expects no query and none may come.
        await using var bob2 = await Online("bob", "tablet", Tune);
        await Publish(alice, Tune, TuneXml("x"));
        Assert.That(await bob2.ReceiveAsync(Event(Tune)), Is.Not.Null);
        Assert.That(_server.Get<PepCaps>().Queries, Is.EqualTo(queries));
        Assert.That(await bob2.TryReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get", Quiet), Is.Null);
    }

    [Test]
    public async Task Caps_whose_answer_does_not_match_the_hash_count_only_for_that_resource()
    {
        await using var alice = await Online("alice", "pc");
        var (info, _) = ClientInfo([Tune]);
        const string fakeVer = "bm90LXRoZS1yZWFsLWhhc2g=";
        await using var liar = await TestClient.ConnectAsync(_server, "bob", "bob-pw", "liar");
        await liar.SendAsync($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{fakeVer}'/></presence>");
        await AnswerDiscoAsync(liar, info, fakeVer);
        await Publish(alice, Tune, TuneXml("first"));
        Assert.That(await liar.ReceiveAsync(Event(Tune)), Is.Not.Null, "the resource that answered is served by its answer");

        await using var other = await TestClient.ConnectAsync(_server, "bob", "bob-pw", "other");
        await other.SendAsync($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{fakeVer}'/></presence>");
        // The unverified answer is not reused: the server asks this resource too.
        await AnswerDiscoAsync(other, ClientInfo([]).Query, fakeVer);
        await other.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == other.Jid!.ToString());
        await Publish(alice, Tune, TuneXml("second"));
        Assert.That(await other.TryReceiveAsync(Event(Tune), Quiet), Is.Null);
    }

    [Test]
    public async Task A_caps_answer_from_anyone_but_the_queried_resource_is_not_believed()
    {
        await using var alice = await Online("alice", "pc");
        await using var carol = await Online("carol", "pc");
        var (_, ver) = ClientInfo([Tune]);
        await using var bob = await TestClient.ConnectAsync(_server, "bob", "bob-pw", "pc");
        await bob.SendAsync($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>");
        var query = await bob.ReceiveAsync(e => e.Name == "iq" && e.Child("query", Ns.DiscoInfo) is not null);
        // Carol answers the server's query in bob's place, with bob's real features.
        var forged = ClientInfo([Tune]).Query.SetAttr("node", CapsNode + "#" + ver);
        await carol.SendAsync(new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", query.Attr("id")).SetAttr("to", "localhost").Add(forged));
        await carol.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(await Wait.UntilAsync(() => _server.Get<PepCaps>().Known(bob.Jid!, X.Parse($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>")) is not null));
        Assert.That(_server.Get<PepCaps>().Known(bob.Jid!, X.Parse($"<presence><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>")), Is.Empty,
            "the forged answer was not cached, not even for bob");
        await Publish(alice, Tune, TuneXml("x"));
        Assert.That(await bob.TryReceiveAsync(Event(Tune), Quiet), Is.Null);
    }

    [Test]
    public async Task The_last_item_is_sent_with_a_delay_when_a_contact_comes_online_with_interest()
    {
        await using (var alice = await Online("alice", "pc"))
        {
            await Publish(alice, Tune, TuneXml("old"), "1");
            await Publish(alice, Tune, TuneXml("newest"), "2");
        }
        await using var bob = await Online("bob", "pc", Tune);
        var n = await bob.ReceiveAsync(Event(Tune));
        Assert.That(X.Matches(n, $"<message from='alice@localhost'><event xmlns='{Ns.PubSubEvent}'><items node='{Tune}'><item id='2'/></items></event><delay xmlns='{Ns.Delay}' stamp='*'/></message>"), n.ToString());
        Assert.That(await bob.TryReceiveAsync(Event(Tune), Quiet), Is.Null, "only the last item");

        // The owner's own new resource gets it too; a stranger does not.
        await using var alice2 = await Online("alice", "laptop", Tune);
        Assert.That(await alice2.ReceiveAsync(Event(Tune)), Is.Not.Null);
        await using var carol = await Online("carol", "pc", Tune);
        Assert.That(await carol.TryReceiveAsync(Event(Tune), Quiet), Is.Null);
    }

    [Test]
    public async Task A_presence_update_with_the_same_caps_does_not_resend_the_last_item()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, Tune, TuneXml("x"), "1");
        await using var bob = await Online("bob", "pc", Tune);
        await bob.ReceiveAsync(Event(Tune));
        var (_, ver) = ClientInfo([Tune]);
        await bob.SendAsync($"<presence><show>away</show><c xmlns='{Ns.Caps}' hash='sha-1' node='{CapsNode}' ver='{ver}'/></presence>");
        Assert.That(await bob.TryReceiveAsync(Event(Tune), Quiet), Is.Null);
    }

    [Test]
    public async Task Retraction_is_notified_per_notify_retract_unless_the_request_says_notify()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "a", TuneXml("1"), "1");
        var quietRetract = Options(("pubsub#notify_retract", "false"), ("pubsub#max_items", "2"));
        Assert.That((await Publish(alice, "b", TuneXml("1"), "1", quietRetract)).Attr("type"), Is.EqualTo("result"));
        Assert.That((await Publish(alice, "b", TuneXml("2"), "2", quietRetract)).Attr("type"), Is.EqualTo("result"));
        await using var bob = await Online("bob", "pc", "a", "b");
        await bob.DrainAsync(Quiet);

        var r = await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><retract node='a'><item id='1'/></retract></pubsub></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        var n = await bob.ReceiveAsync(Event("a"));
        Assert.That(X.Matches(n, $"<message><event xmlns='{Ns.PubSubEvent}'><items node='a'><retract id='1'/></items></event></message>"), n.ToString());

        await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><retract node='b'><item id='1'/></retract></pubsub></iq>");
        Assert.That(await bob.TryReceiveAsync(Event("b"), Quiet), Is.Null, "notify_retract false");
        await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><retract node='b' notify='true'><item id='2'/></retract></pubsub></iq>");
        Assert.That(X.Matches(await bob.ReceiveAsync(Event("b")), $"<message><event xmlns='{Ns.PubSubEvent}'><items node='b'><retract id='2'/></items></event></message>"));
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><retract node='b'><item id='2'/></retract></pubsub></iq>"), StanzaErrors.ItemNotFound);
    }

    [Test]
    public async Task Purge_and_delete_by_the_owner_empty_and_remove_the_node_and_tell_interested_contacts()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, Tune, TuneXml("x"), "1");
        await using var bob = await Online("bob", "pc", Tune);
        await bob.ReceiveAsync(Event(Tune));

        Assert.That((await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><purge node='{Tune}'/></pubsub></iq>")).Attr("type"), Is.EqualTo("result"));
        Assert.That(X.Matches(await bob.ReceiveAsync(Event(Tune)), $"<message><event xmlns='{Ns.PubSubEvent}'><purge node='{Tune}'/></event></message>"));
        Assert.That(ItemIds(await Items(alice, "alice@localhost", Tune)), Is.Empty);

        Assert.That((await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><delete node='{Tune}'/></pubsub></iq>")).Attr("type"), Is.EqualTo("result"));
        Assert.That(X.Matches(await bob.ReceiveAsync(Event(Tune)), $"<message><event xmlns='{Ns.PubSubEvent}'><delete node='{Tune}'/></event></message>"));
        AssertError(await Items(alice, "alice@localhost", Tune), StanzaErrors.ItemNotFound);
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><delete node='{Tune}'/></pubsub></iq>"), StanzaErrors.ItemNotFound);
    }

    [Test]
    public async Task Node_configuration_is_a_data_form_and_unsupported_values_are_not_acceptable()
    {
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "n", TuneXml("x"));
        var config = await alice.IqAsync($"<iq type='get'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='n'/></pubsub></iq>");
        var x = config.Child("pubsub", Ns.PubSubOwner)!.Child("configure", Ns.PubSubOwner)!.Child("x", Ns.DataForms)!;
        var form = Xmpp.Protocol.Payloads.DataForm.Parse(x);
        Assert.That(form.FormType, Is.EqualTo(Ns.PubSubNodeConfig));
        Assert.That(form.Value("pubsub#access_model"), Is.EqualTo("presence"));
        Assert.That(form.Value("pubsub#max_items"), Is.EqualTo("1"));
        Assert.That(form.Value("pubsub#send_last_published_item"), Is.EqualTo("on_sub_and_presence"));
        var access = x.Elements("field", Ns.DataForms).Single(f => f.Attr("var") == "pubsub#access_model");
        Assert.That(access.Elements("option", Ns.DataForms).Select(o => o.ChildText("value", Ns.DataForms)), Is.EquivalentTo(new[] { "open", "presence", "roster", "whitelist" }));

        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='n'><x xmlns='jabber:x:data' type='submit'>" +
            "<field var='pubsub#access_model'><value>authorize</value></field></x></configure></pubsub></iq>"), StanzaErrors.NotAcceptable);
        AssertError(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='missing'><x xmlns='jabber:x:data' type='submit'/></configure></pubsub></iq>"), StanzaErrors.ItemNotFound);
        var defaults = await alice.IqAsync($"<iq type='get'><pubsub xmlns='{Ns.PubSubOwner}'><default/></pubsub></iq>");
        Assert.That(X.Matches(defaults, $"<iq type='result'><pubsub xmlns='{Ns.PubSubOwner}'><default><x xmlns='jabber:x:data' type='form'/></default></pubsub></iq>"), defaults.ToString());
    }

    [Test]
    public async Task Create_with_a_configuration_makes_an_empty_node_and_a_second_create_conflicts()
    {
        await using var alice = await Online("alice", "pc");
        var create = $"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><create node='made'/><configure><x xmlns='jabber:x:data' type='submit'>" +
            $"<field var='FORM_TYPE' type='hidden'><value>{Ns.PubSubNodeConfig}</value></field><field var='pubsub#access_model'><value>open</value></field></x></configure></pubsub></iq>";
        Assert.That((await alice.IqAsync(create)).Attr("type"), Is.EqualTo("result"));
        AssertError(await alice.IqAsync(create), StanzaErrors.Conflict);
        await using var carol = await Online("carol", "pc");
        Assert.That(ItemIds(await Items(carol, "alice@localhost", "made")), Is.Empty, "open and empty");
    }
}
