using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0425 moderated retraction: a moderator retracts a message by its stanza-id; occupants hear it, and the archive
/// and the history for joiners keep a tombstone.
[TestFixture]
public sealed class MucModerationTests : MucTestBase
{
    private static Task<Element> Moderate(TestClient c, string room, string id, string reason = "spam") =>
        c.IqAsync($"<iq type='set' to='{room}'><moderate xmlns='urn:xmpp:message-moderate:1' id='{id}'>" +
            $"<retract xmlns='urn:xmpp:message-retract:1'/><reason>{reason}</reason></moderate></iq>");

    /// Joins and checks that the history holds the message with that id as a tombstone.
    private static async Task AssertTombstoneOnJoin(TestClient c, string room, string nick, string id)
    {
        await JoinAsync(c, room, nick);
        var history = await c.ReceiveAsync(e => e.Name == "message" && e.Child("stanza-id", Ns.StanzaId)?.Attr("id") == id);
        Assert.That(history.Child("body", Ns.Client), Is.Null);
        Assert.That(history.Child("retracted", Ns.MessageRetract), Is.Not.Null);
    }

    private static bool IsRetraction(Element e, string id) =>
        e.Name == "message" && e.Child("retract", Ns.MessageRetract)?.Attr("id") == id;

    [Test]
    public async Task Moderator_retracts_a_message_everyone_hears_it_and_the_archive_keeps_a_tombstone()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await SayAsync(bob, alice, room, "fine");
        var id = await SayAsync(bob, alice, room, "buy potions");

        var r = await Moderate(alice, room, id);
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        foreach (var c in new[] { alice, bob })
        {
            var retraction = await c.ReceiveAsync(e => IsRetraction(e, id));
            Assert.That(retraction.Attr("from"), Is.EqualTo(room));
            Assert.That(retraction.Attr("type"), Is.EqualTo("groupchat"));
            var moderated = retraction.Child("retract", Ns.MessageRetract)!.Child("moderated", Ns.MessageModerate)!;
            Assert.That(moderated.Attr("by"), Is.EqualTo(room + "/Alice"));
            Assert.That(moderated.Child("occupant-id", Ns.OccupantId), Is.Not.Null);
            Assert.That(retraction.Child("retract", Ns.MessageRetract)!.ChildText("reason", Ns.MessageRetract), Is.EqualTo("spam"));
        }

        var (results, _) = await RoomArchiveAsync(bob, room);
        var tombstone = results.Single(x => x.Attr("id") == id);
        var m = Forwarded(tombstone);
        Assert.That(m.Child("body", Ns.Client), Is.Null);
        Assert.That(m.Attr("from"), Is.EqualTo(room + "/Bob"));
        var retracted = m.Child("retracted", Ns.MessageRetract)!;
        Assert.That(retracted.Attr("stamp"), Is.Not.Null);
        Assert.That(retracted.Child("moderated", Ns.MessageModerate)!.Attr("by"), Is.EqualTo(room + "/Alice"));
        Assert.That(results.Select(x => Forwarded(x).ChildText("body", Ns.Client)), Does.Contain("fine"));
        Assert.That(results.Any(x => Forwarded(x).Child("retract", Ns.MessageRetract)?.Attr("id") == id), Is.True,
            "the retraction itself is archived for clients catching up");

        await AssertTombstoneOnJoin(await Connect("carol"), room, "Carol", id);
    }

    [Test]
    public async Task Temporary_rooms_turn_the_history_for_joiners_into_tombstones()
    {
        var alice = await Connect("alice");
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        var id = await SayAsync(alice, alice, room, "oops");
        Assert.That((await Moderate(alice, room, id)).Attr("type"), Is.EqualTo("result"));
        await AssertTombstoneOnJoin(await Connect("bob"), room, "Bob", id);
    }

    [Test]
    public async Task Participants_are_forbidden_unknown_ids_are_not_found_and_the_room_announces_the_feature()
    {
        var alice = await Connect("alice");
        var room = await PersistentRoomAsync(alice, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        var id = await SayAsync(alice, bob, room, "mine");
        Assert.That(ErrorCondition(await Moderate(bob, room, id)), Is.EqualTo("forbidden"));
        Assert.That(ErrorCondition(await Moderate(alice, room, "no-such-id")), Is.EqualTo("item-not-found"));
        var (results, _) = await RoomArchiveAsync(alice, room);
        Assert.That(Forwarded(results.Single()).ChildText("body", Ns.Client), Is.EqualTo("mine"));
        var info = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")),
            Does.Contain("urn:xmpp:message-moderate:1"));
    }
}
