using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0045 core: the service, entering and leaving, nicknames, groupchat, subject and private messages.
[TestFixture]
public sealed class MucModuleTests : MucTestBase
{
    [Test]
    public async Task Service_is_listed_in_the_domains_disco_items_with_a_conference_identity()
    {
        var alice = await Connect("alice");
        var items = await alice.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(X.Matches(items, $"<iq type='result'><query xmlns='http://jabber.org/protocol/disco#items'><item jid='{Service}'/></query></iq>"), items.ToString());
        var info = await alice.IqAsync($"<iq type='get' to='{Service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='conference' type='text'/>" +
            "<feature var='http://jabber.org/protocol/muc'/></query></iq>"), info.ToString());
    }

    [Test]
    public async Task Unknown_iq_to_the_service_gets_service_unavailable()
    {
        var alice = await Connect("alice");
        var r = await alice.IqAsync($"<iq type='get' to='{Service}'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(ErrorCondition(r), Is.EqualTo("service-unavailable"));
    }

    [Test]
    public async Task First_join_creates_a_locked_room_and_the_owner_gets_110_and_201()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        var self = await JoinAsync(alice, room, "Alice");
        Assert.That(Codes(self), Is.SupersetOf(new[] { 110, 201 }));
        Assert.That(X.Matches(Item(self)!, "<item xmlns='http://jabber.org/protocol/muc#user' affiliation='owner' role='moderator'/>"), self.ToString());
        Assert.That(self.Child("occupant-id", Ns.OccupantId)?.Attr("id"), Is.Not.Null.And.Not.Empty);
        var subject = await ReceiveSubjectAsync(alice, room);
        Assert.That(subject.ChildText("subject", Ns.Client), Is.Empty);

        // XEP-0045 §10.1.1: nobody else enters until the owner has configured the room.
        var bob = await Connect("bob");
        var refused = await JoinAsync(bob, room, "Bob");
        Assert.That(ErrorCondition(refused), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task Join_without_the_muc_element_creates_an_instant_room()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await alice.SendAsync($"<presence to='{room}/Alice'/>");
        var self = await alice.ReceiveAsync(e => IsSelfPresence(e, room + "/Alice"));
        Assert.That(Codes(self), Does.Contain(201));
        var bob = await Connect("bob");
        Assert.That(Codes(await JoinFullyAsync(bob, room, "Bob")), Does.Contain(110));
    }

    [Test]
    public async Task Second_occupant_receives_existing_occupants_then_itself_and_others_hear_of_it()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await bob.SendAsync($"<presence to='{room}/Bob'><status>hi</status><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        bool FromRoom(Xmpp.Protocol.Xml.Element e) => e.Name == "presence" && e.Attr("from")!.StartsWith(room, StringComparison.Ordinal);
        var first = await bob.ReceiveAsync(FromRoom);
        Assert.That(first.Attr("from"), Is.EqualTo(room + "/Alice"), "existing occupants come first (§7.2.3)");
        Assert.That(Codes(first), Does.Not.Contain(110));
        var self = await bob.ReceiveAsync(FromRoom);
        Assert.That(self.Attr("from"), Is.EqualTo(room + "/Bob"));
        Assert.That(Codes(self), Does.Contain(110).And.Not.Contain(201).And.Not.Contain(100));
        Assert.That(X.Matches(Item(self)!, "<item xmlns='http://jabber.org/protocol/muc#user' affiliation='none' role='participant'/>"));
        Assert.That(Item(first)!.Attr("jid"), Is.Null, "a semi-anonymous room hides real JIDs from participants");
        var seen = await ReceivePresenceFrom(alice, room + "/Bob");
        Assert.That(seen.ChildText("status", Ns.Client), Is.EqualTo("hi"));
        Assert.That(Item(seen)!.Attr("jid"), Is.EqualTo("bob@localhost/pc"), "moderators see real JIDs");
    }

    [Test]
    public async Task Non_anonymous_room_announces_100_and_shows_real_jids_to_everyone()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        Assert.That((await ConfigureAsync(alice, room, ("muc#roomconfig_whois", "anyone"))).Attr("type"), Is.EqualTo("result"));
        var bob = await Connect("bob");
        var self = await JoinAsync(bob, room, "Bob");
        Assert.That(Codes(self), Does.Contain(100).And.Contain(110));
        Assert.That(Item(self)!.Attr("jid"), Is.EqualTo("bob@localhost/pc"));
    }

    [Test]
    public async Task Taken_nickname_gets_conflict()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        var refused = await JoinAsync(bob, room, "alice");
        Assert.That(ErrorCondition(refused), Is.EqualTo("conflict"), "nicks compare case-insensitively (RFC 8266 §2.4)");
        Assert.That(refused.Attr("from"), Is.EqualTo(room + "/alice"));
    }

    [Test]
    public async Task Nickname_normalised_by_the_service_is_announced_with_210()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        // RFC 8266: the Nickname profile maps the fullwidth letters to ASCII (NFKC).
        await bob.SendAsync($"<presence to='{room}/Ｂｏｂ'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        var self = await bob.ReceiveAsync(e => e.Name == "presence" && Codes(e).Contains(110));
        Assert.That(self.Attr("from"), Is.EqualTo(room + "/Bob"));
        Assert.That(Codes(self), Does.Contain(210));
    }

    [Test]
    public async Task Join_without_a_nickname_or_with_a_disallowed_one_gets_jid_malformed()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await bob.SendAsync($"<presence to='{room}'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        var e1 = await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(e1), Is.EqualTo("jid-malformed"));
        var e2 = await JoinAsync(bob, room, "   ");
        Assert.That(ErrorCondition(e2), Is.EqualTo("jid-malformed"));
    }

    [Test]
    public async Task Nick_change_sends_303_with_the_new_nick_then_the_new_presence()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await bob.SendAsync($"<presence to='{room}/Robert'/>");
        var gone = await ReceivePresenceFrom(bob, room + "/Bob", "unavailable");
        Assert.That(Codes(gone), Does.Contain(303).And.Contain(110));
        Assert.That(Item(gone)!.Attr("nick"), Is.EqualTo("Robert"));
        var back = await ReceivePresenceFrom(bob, room + "/Robert");
        Assert.That(Codes(back), Does.Contain(110));
        var seenGone = await ReceivePresenceFrom(alice, room + "/Bob", "unavailable");
        Assert.That(Codes(seenGone), Does.Contain(303).And.Not.Contain(110));
        await ReceivePresenceFrom(alice, room + "/Robert");

        await bob.SendAsync($"<presence to='{room}/Alice'/>");
        var conflict = await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(conflict), Is.EqualTo("conflict"));
    }

    [Test]
    public async Task Leaving_sends_unavailable_with_110_to_self_and_plain_unavailable_to_others()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await bob.SendAsync($"<presence to='{room}/Bob' type='unavailable'><status>bye</status></presence>");
        var self = await ReceivePresenceFrom(bob, room + "/Bob", "unavailable");
        Assert.That(Codes(self), Does.Contain(110));
        var seen = await ReceivePresenceFrom(alice, room + "/Bob", "unavailable");
        Assert.That(Codes(seen), Does.Not.Contain(110));
        Assert.That(seen.ChildText("status", Ns.Client), Is.EqualTo("bye"));
        Assert.That(X.Matches(Item(seen)!, "<item xmlns='http://jabber.org/protocol/muc#user' role='none'/>"));
    }

    [Test]
    public async Task Disconnecting_without_leaving_removes_the_occupant()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await TestClient.ConnectAsync(Server, "bob", "bob-pw", "gone", sendPresence: true);
        await JoinFullyAsync(bob, room, "Bob");
        await ReceivePresenceFrom(alice, room + "/Bob");
        await bob.CloseAsync();
        await bob.DisposeAsync();
        await ReceivePresenceFrom(alice, room + "/Bob", "unavailable");
    }

    [Test]
    public async Task Groupchat_is_reflected_to_every_occupant_including_the_sender_with_stanza_id_and_occupant_id()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await bob.SendAsync($"<message to='{room}' type='groupchat' id='m1'><body>hello all</body>" +
            $"<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='{room}'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>");
        foreach (var c in new[] { alice, bob })
        {
            var m = await ReceiveBodyAsync(c, "hello all");
            Assert.That(m.Attr("from"), Is.EqualTo(room + "/Bob"));
            Assert.That(m.Attr("type"), Is.EqualTo("groupchat"));
            Assert.That(m.Attr("id"), Is.EqualTo("m1"));
            var ids = m.Elements("stanza-id", Ns.StanzaId).ToList();
            Assert.That(ids, Has.Count.EqualTo(1));
            Assert.That(ids[0].Attr("by"), Is.EqualTo(room));
            Assert.That(ids[0].Attr("id"), Is.Not.EqualTo("forged"));
            var occ = m.Elements("occupant-id", Ns.OccupantId).ToList();
            Assert.That(occ, Has.Count.EqualTo(1));
            Assert.That(occ[0].Attr("id"), Is.Not.EqualTo("forged"));
        }
    }

    [Test]
    public async Task Occupant_id_is_stable_for_a_user_and_differs_between_users()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        var first = (await JoinFullyAsync(bob, room, "Bob")).Child("occupant-id", Ns.OccupantId)!.Attr("id");
        await bob.SendAsync($"<presence to='{room}/Bob' type='unavailable'/>");
        await ReceivePresenceFrom(bob, room + "/Bob", "unavailable");
        var second = (await JoinFullyAsync(bob, room, "Robert")).Child("occupant-id", Ns.OccupantId)!.Attr("id");
        Assert.That(second, Is.EqualTo(first));
        var aliceId = (await ReceivePresenceFrom(bob, room + "/Alice")).Child("occupant-id", Ns.OccupantId)!.Attr("id");
        Assert.That(aliceId, Is.Not.EqualTo(first));
    }

    [Test]
    public async Task Groupchat_from_a_non_occupant_is_refused_with_not_acceptable()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await GroupchatAsync(bob, room, "sneaky");
        var error = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(error), Is.EqualTo("not-acceptable"));
        Assert.That(await alice.TryReceiveAsync(e => e.ChildText("body", Ns.Client) == "sneaky", Quiet), Is.Null);
    }

    [Test]
    public async Task Subject_is_set_by_a_moderator_and_sent_last_on_join()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await alice.SendAsync($"<message to='{room}' type='groupchat'><subject>Plans</subject></message>");
        var change = await ReceiveSubjectAsync(alice, room);
        Assert.That(change.Attr("from"), Is.EqualTo(room + "/Alice"));
        Assert.That(change.ChildText("subject", Ns.Client), Is.EqualTo("Plans"));

        var bob = await Connect("bob");
        await JoinAsync(bob, room, "Bob");
        var subject = await ReceiveSubjectAsync(bob, room);
        Assert.That(subject.ChildText("subject", Ns.Client), Is.EqualTo("Plans"));
        Assert.That(subject.Attr("from"), Is.EqualTo(room + "/Alice"));

        // §8.1: a participant may not change it unless the room allows.
        await bob.SendAsync($"<message to='{room}' type='groupchat'><subject>Mine</subject></message>");
        var refused = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(refused), Is.EqualTo("forbidden"));
        Assert.That((await ConfigureAsync(alice, room, ("muc#roomconfig_changesubject", "1"))).Attr("type"), Is.EqualTo("result"));
        await bob.SendAsync($"<message to='{room}' type='groupchat'><subject>Mine</subject></message>");
        var accepted = await alice.ReceiveAsync(e => e.ChildText("subject", Ns.Client) == "Mine");
        Assert.That(accepted.Attr("from"), Is.EqualTo(room + "/Bob"));
    }

    [Test]
    public async Task Private_messages_go_between_occupants_from_occupant_jids()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await bob.SendAsync($"<message to='{room}/Alice' type='chat'><body>psst</body></message>");
        var pm = await ReceiveBodyAsync(alice, "psst");
        Assert.That(pm.Attr("from"), Is.EqualTo(room + "/Bob"));
        Assert.That(pm.Attr("to"), Is.EqualTo("alice@localhost/pc"));
        Assert.That(pm.Child("x", Ns.MucUser), Is.Not.Null);

        await bob.SendAsync($"<message to='{room}/Nobody' type='chat'><body>?</body></message>");
        Assert.That(ErrorCondition(await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("item-not-found"));
        await bob.SendAsync($"<message to='{room}/Alice' type='groupchat'><body>?</body></message>");
        Assert.That(ErrorCondition(await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("bad-request"));
        var carol = await Connect("carol");
        await carol.SendAsync($"<message to='{room}/Alice' type='chat'><body>outsider</body></message>");
        Assert.That(ErrorCondition(await carol.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("not-acceptable"));
    }

    [Test]
    public async Task Private_messages_follow_the_rooms_allowpm_setting()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        Assert.That((await ConfigureAsync(alice, room, ("muc#roomconfig_allowpm", "moderators"))).Attr("type"), Is.EqualTo("result"));
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await bob.SendAsync($"<message to='{room}/Alice' type='chat'><body>psst</body></message>");
        Assert.That(ErrorCondition(await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("forbidden"));
        await alice.SendAsync($"<message to='{room}/Bob' type='chat'><body>from the mod</body></message>");
        await ReceiveBodyAsync(bob, "from the mod");
    }

    [Test]
    public async Task Self_ping_is_answered_by_the_room_for_occupants_only()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var pong = await alice.IqAsync($"<iq type='get' to='{room}/Alice'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        var bob = await Connect("bob");
        var refused = await bob.IqAsync($"<iq type='get' to='{room}/Alice'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(ErrorCondition(refused), Is.EqualTo("not-acceptable"), "XEP-0410 §3.2: not joined");
    }

    [Test]
    public async Task Two_resources_of_one_user_share_a_nickname()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob1 = await Connect("bob", "one");
        var bob2 = await Connect("bob", "two");
        await JoinFullyAsync(bob1, room, "Bob");
        await JoinFullyAsync(bob2, room, "Bob");
        await GroupchatAsync(alice, room, "to both");
        await ReceiveBodyAsync(bob1, "to both");
        await ReceiveBodyAsync(bob2, "to both");
    }

    [TestCase("<presence to='{0}/Bob' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>")]
    [TestCase("<message to='{0}' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")]
    public async Task Occupant_that_bounces_room_traffic_is_removed_with_333(string bounce)
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await ReceivePresenceFrom(alice, room + "/Bob");
        await bob.SendAsync(string.Format(bounce, room));
        var gone = await ReceivePresenceFrom(alice, room + "/Bob", "unavailable");
        Assert.That(Codes(gone), Does.Contain(333));
        await GroupchatAsync(bob, room, "am I in?");
        Assert.That(ErrorCondition(await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("not-acceptable"));
    }

    [Test]
    public async Task Iq_to_an_occupant_is_relayed_both_ways_between_occupant_jids()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await bob.SendAsync($"<iq type='get' id='v1' to='{room}/Alice'><query xmlns='jabber:iq:version'/></iq>");
        var request = await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get");
        Assert.That(request.Attr("from"), Is.EqualTo(room + "/Bob"));
        Assert.That(request.Child("query", Ns.Version), Is.Not.Null);
        await alice.SendAsync($"<iq type='result' id='{request.Attr("id")}' to='{room}/Bob'><query xmlns='jabber:iq:version'><name>test</name></query></iq>");
        var answer = await bob.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "v1");
        Assert.That(answer.Attr("type"), Is.EqualTo("result"));
        Assert.That(answer.Attr("from"), Is.EqualTo(room + "/Alice"));
        Assert.That(answer.Child("query", Ns.Version)!.ChildText("name", Ns.Version), Is.EqualTo("test"));

        var missing = await bob.IqAsync($"<iq type='get' to='{room}/Nobody'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(ErrorCondition(missing), Is.EqualTo("item-not-found"));
        // An answer nobody asked for goes nowhere.
        await alice.SendAsync($"<iq type='result' id='muc-999' to='{room}/Bob'/>");
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "iq", Quiet), Is.Null);
    }

    [Test]
    public async Task Relayed_iqs_left_unanswered_are_forgotten_oldest_first()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        var ids = new List<string>();
        for (int i = 0; i < 257; i++)
        {
            await bob.SendAsync($"<iq type='get' id='q{i}' to='{room}/Alice'><query xmlns='jabber:iq:version'/></iq>");
            ids.Add((await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get")).Attr("id")!);
        }
        // The table holds 256: the first request is gone, the second still answers.
        await alice.SendAsync($"<iq type='result' id='{ids[0]}' to='{room}/Bob'/>");
        await alice.SendAsync($"<iq type='result' id='{ids[1]}' to='{room}/Bob'/>");
        var answer = await bob.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "result");
        Assert.That(answer.Attr("id"), Is.EqualTo("q1"));
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "iq", Quiet), Is.Null);
    }
}
