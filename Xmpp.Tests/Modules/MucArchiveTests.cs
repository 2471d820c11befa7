using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0313 archives of rooms: what is archived, how it is queried at the room JID, who may read it, and what
/// real JIDs results show; XEP-0045 status codes 170/171 for logging.
[TestFixture]
public sealed class MucArchiveTests : MucTestBase
{
    private static async Task<List<string>> SendAll(TestClient sender, TestClient watcher, string room, params string[] bodies)
    {
        var ids = new List<string>();
        foreach (var body in bodies) ids.Add(await SayAsync(sender, watcher, room, body));
        return ids;
    }

    private static IEnumerable<string?> Bodies(IEnumerable<Element> results) => results.Select(r => Forwarded(r).ChildText("body", Ns.Client));

    [Test]
    public async Task Groupchat_messages_are_archived_under_the_reflected_stanza_id_and_forwarded_from_the_occupant()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        var ids = await SendAll(alice, bob, room, "one", "two", "three");

        var (results, iq) = await RoomArchiveAsync(bob, room);
        Assert.That(iq.Attr("type"), Is.EqualTo("result"), iq.ToString());
        Assert.That(iq.Attr("from"), Is.EqualTo(room));
        Assert.That(iq.Child("fin", Ns.Mam)!.Attr("complete"), Is.EqualTo("true"));
        Assert.That(results.Select(r => r.Attr("id")), Is.EqualTo(ids));
        Assert.That(Bodies(results), Is.EqualTo(new[] { "one", "two", "three" }));
        foreach (var r in results)
        {
            var m = Forwarded(r);
            Assert.That(m.Attr("from"), Is.EqualTo(room + "/Alice"));
            Assert.That(m.Attr("type"), Is.EqualTo("groupchat"));
            Assert.That(r.Child("forwarded", Ns.Forward)!.Child("delay", Ns.Delay), Is.Not.Null);
            // A semi-anonymous room: a participant never learns Alice's real JID from the archive.
            Assert.That(m.ToString(), Does.Not.Contain("alice@localhost"));
        }
    }

    [Test]
    public async Task Result_messages_come_from_the_room_to_the_querying_resource()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice");
        await SendAll(alice, alice, room, "hello");
        var queryId = "qx";
        await alice.SendAsync($"<iq type='set' id='a1' to='{room}'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'/></iq>");
        var result = await alice.ReceiveAsync(e => e.Name == "message" && e.Child("result", Ns.Mam) is not null);
        Assert.That(result.Attr("from"), Is.EqualTo(room));
        Assert.That(result.Attr("to"), Is.EqualTo("alice@localhost/pc"));
        Assert.That(result.Child("result", Ns.Mam)!.Attr("queryid"), Is.EqualTo(queryId));
    }

    [Test]
    public async Task Moderators_and_everyone_in_non_anonymous_rooms_see_the_real_jid_and_a_forged_one_is_dropped()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await bob.SendAsync($"<message to='{room}' type='groupchat'><body>hi</body>" +
            "<x xmlns='http://jabber.org/protocol/muc#user'><item jid='carol@localhost'/></x></message>");
        await ReceiveBodyAsync(alice, "hi");

        var (asOwner, _) = await RoomArchiveAsync(alice, room);
        var items = Forwarded(asOwner.Single()).Elements("x", Ns.MucUser).Select(x => x.Child("item", Ns.MucUser)?.Attr("jid")).ToList();
        Assert.That(items, Is.EqualTo(new[] { "bob@localhost" }));

        var (asBob, _) = await RoomArchiveAsync(bob, room);
        Assert.That(Forwarded(asBob.Single()).Child("x", Ns.MucUser), Is.Null);

        Assert.That((await ConfigureAsync(alice, room, ("muc#roomconfig_whois", "anyone"))).Attr("type"), Is.EqualTo("result"));
        var (nonAnonymous, _) = await RoomArchiveAsync(bob, room);
        Assert.That(Forwarded(nonAnonymous.Single()).Child("x", Ns.MucUser)?.Child("item", Ns.MucUser)?.Attr("jid"), Is.EqualTo("bob@localhost"));
    }

    [Test]
    public async Task With_start_end_and_ids_filter_and_rsm_pages_both_ways()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        var ids = await SendAll(alice, bob, room, "a1", "a2");
        ids.AddRange(await SendAll(bob, alice, room, "b1"));
        ids.AddRange(await SendAll(alice, bob, room, "a3"));

        var (byBob, _) = await RoomArchiveAsync(alice, room, [$"with={room}/Bob"]);
        Assert.That(Bodies(byBob), Is.EqualTo(new[] { "b1" }));
        var (future, _) = await RoomArchiveAsync(alice, room, ["start=2999-01-01T00:00:00Z"]);
        Assert.That(future, Is.Empty);
        var (past, _) = await RoomArchiveAsync(alice, room, ["end=2000-01-01T00:00:00Z"]);
        Assert.That(past, Is.Empty);
        var (picked, _) = await RoomArchiveAsync(alice, room, [$"ids={ids[1]}", $"ids={ids[3]}"]);
        Assert.That(Bodies(picked), Is.EqualTo(new[] { "a2", "a3" }));

        var (first, firstIq) = await RoomArchiveAsync(alice, room, rsm: "<max>2</max>");
        Assert.That(Bodies(first), Is.EqualTo(new[] { "a1", "a2" }));
        Assert.That(firstIq.Child("fin", Ns.Mam)!.Attr("complete"), Is.EqualTo("false"));
        var last = firstIq.Child("fin", Ns.Mam)!.Child("set", Ns.Rsm)!.ChildText("last", Ns.Rsm);
        var (second, secondIq) = await RoomArchiveAsync(alice, room, rsm: $"<max>2</max><after>{last}</after>");
        Assert.That(Bodies(second), Is.EqualTo(new[] { "b1", "a3" }));
        Assert.That(secondIq.Child("fin", Ns.Mam)!.Attr("complete"), Is.EqualTo("true"));

        var (newest, newestIq) = await RoomArchiveAsync(alice, room, rsm: "<max>1</max><before/>");
        Assert.That(Bodies(newest), Is.EqualTo(new[] { "a3" }));
        var firstOfPage = newestIq.Child("fin", Ns.Mam)!.Child("set", Ns.Rsm)!.ChildText("first", Ns.Rsm);
        var (older, _) = await RoomArchiveAsync(alice, room, rsm: $"<max>2</max><before>{firstOfPage}</before>");
        Assert.That(Bodies(older), Is.EqualTo(new[] { "a2", "b1" }));

        var (_, unknown) = await RoomArchiveAsync(alice, room, rsm: "<after>no-such-id</after>");
        Assert.That(ErrorCondition(unknown), Is.EqualTo("item-not-found"));
        var (_, elsewhere) = await RoomArchiveAsync(alice, room, ["with=bob@localhost"]);
        Assert.That(ErrorCondition(elsewhere), Is.EqualTo("feature-not-implemented"));
    }

    [Test]
    public async Task Metadata_names_the_first_and_last_message_and_flip_page_sends_newest_first()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice");
        var empty = await alice.IqAsync($"<iq type='get' to='{room}'><metadata xmlns='urn:xmpp:mam:2'/></iq>");
        Assert.That(empty.Child("metadata", Ns.Mam)!.FirstElement, Is.Null);
        var ids = await SendAll(alice, alice, room, "x", "y", "z");
        var meta = (await alice.IqAsync($"<iq type='get' to='{room}'><metadata xmlns='urn:xmpp:mam:2'/></iq>")).Child("metadata", Ns.Mam)!;
        Assert.That(meta.Child("start", Ns.Mam)!.Attr("id"), Is.EqualTo(ids[0]));
        Assert.That(meta.Child("end", Ns.Mam)!.Attr("id"), Is.EqualTo(ids[2]));

        var queryId = "flip";
        var iq = await alice.IqAsync($"<iq type='set' to='{room}'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'><flip-page/></query></iq>");
        Assert.That(iq.Attr("type"), Is.EqualTo("result"));
        var flipped = new List<string?>();
        while (await alice.TryReceiveAsync(e => e.Child("result", Ns.Mam)?.Attr("queryid") == queryId, TimeSpan.FromMilliseconds(1)) is { } m)
            flipped.Add(Forwarded(m.Child("result", Ns.Mam)!).ChildText("body", Ns.Client));
        Assert.That(flipped, Is.EqualTo(new[] { "z", "y", "x" }));
    }

    [Test]
    public async Task Members_only_rooms_let_members_read_and_outcasts_never_read()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice", ("muc#roomconfig_membersonly", "1"));
        await SendAll(alice, alice, room, "secret");
        var bob = await Connect("bob");
        var (_, refused) = await RoomArchiveAsync(bob, room);
        Assert.That(ErrorCondition(refused), Is.EqualTo("forbidden"));
        await AdminAsync(alice, room, "<item affiliation='member' jid='bob@localhost'/>");
        var (results, allowed) = await RoomArchiveAsync(bob, room);
        Assert.That(allowed.Attr("type"), Is.EqualTo("result"));
        Assert.That(Bodies(results), Is.EqualTo(new[] { "secret" }));

        var open = await PersistentRoomAsync(alice, "Alice");
        var carol = await Connect("carol");
        var (_, stranger) = await RoomArchiveAsync(carol, open);
        Assert.That(stranger.Attr("type"), Is.EqualTo("result"), "anyone who could enter an open room may read it");
        await AdminAsync(alice, open, "<item affiliation='outcast' jid='carol@localhost'/>");
        var (_, banned) = await RoomArchiveAsync(carol, open);
        Assert.That(ErrorCondition(banned), Is.EqualTo("forbidden"));
    }

    [Test]
    public async Task Only_archived_rooms_announce_mam_and_say_170_and_turning_it_off_says_171()
    {
        var alice = await Connect("alice");
        var temporary = NewRoom();
        await CreateInstantAsync(alice, temporary, "Alice");
        Assert.That(await Features(alice, temporary), Does.Not.Contain(Ns.Mam));
        var (_, notArchived) = await RoomArchiveAsync(alice, temporary);
        Assert.That(ErrorCondition(notArchived), Is.EqualTo("service-unavailable"));

        var room = await PersistentRoomAsync(alice, "Alice");
        Assert.That(Codes(await alice.ReceiveAsync(e => e.Name == "message" && Codes(e).Contains(104) && e.Attr("from") == room)), Does.Contain(170));
        Assert.That(await Features(alice, room), Does.Contain(Ns.Mam).And.Contain(Ns.MamExtended));
        var bob = await Connect("bob");
        Assert.That(Codes(await JoinFullyAsync(bob, room, "Bob")), Does.Contain(170));

        Assert.That((await ConfigureAsync(alice, room, ("muc#roomconfig_enablearchiving", "0"))).Attr("type"), Is.EqualTo("result"));
        Assert.That(Codes(await bob.ReceiveAsync(e => e.Name == "message" && Codes(e).Contains(104))), Does.Contain(171));
        Assert.That(await Features(alice, room), Does.Not.Contain(Ns.Mam));
        var carol = await Connect("carol");
        Assert.That(Codes(await JoinFullyAsync(carol, room, "Carol")), Does.Not.Contain(170));
    }

    private static async Task<List<string?>> Features(TestClient c, string room)
    {
        var info = await c.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        return info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
    }
}
