using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0045 §8 and §9: kicking, banning, voice, and the affiliation lists.
[TestFixture]
public sealed class MucAdminTests : MucTestBase
{
    private async Task<(string Room, TestClient Alice, TestClient Bob)> RoomWithBob()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await ReceivePresenceFrom(alice, room + "/Bob");
        return (room, alice, bob);
    }

    [Test]
    public async Task Moderator_kicks_an_occupant_who_gets_307_with_actor_and_reason()
    {
        var (room, alice, bob) = await RoomWithBob();
        var r = await AdminAsync(alice, room, "<item nick='Bob' role='none'><reason>spam</reason></item>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"));
        var kicked = await ReceivePresenceFrom(bob, room + "/Bob", "unavailable");
        Assert.That(Codes(kicked), Does.Contain(307).And.Contain(110));
        Assert.That(X.Matches(Item(kicked)!, "<item xmlns='http://jabber.org/protocol/muc#user' role='none'><actor nick='Alice'/><reason>spam</reason></item>"), kicked.ToString());
        Assert.That(Codes(await ReceivePresenceFrom(alice, room + "/Bob", "unavailable")), Does.Contain(307));
        await GroupchatAsync(bob, room, "still here?");
        Assert.That(ErrorCondition(await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("not-acceptable"));
    }

    [Test]
    public async Task Participant_cannot_kick_and_nobody_kicks_an_owner()
    {
        var (room, alice, bob) = await RoomWithBob();
        Assert.That(ErrorCondition(await AdminAsync(bob, room, "<item nick='Alice' role='none'/>")), Is.EqualTo("forbidden"));
        var carol = await Connect("carol");
        await JoinFullyAsync(carol, room, "Carol");
        Assert.That((await AdminAsync(alice, room, "<item nick='Carol' role='moderator'/>")).Attr("type"), Is.EqualTo("result"));
        Assert.That(ErrorCondition(await AdminAsync(carol, room, "<item nick='Alice' role='none'/>")), Is.EqualTo("not-allowed"));
        Assert.That(ErrorCondition(await AdminAsync(alice, room, "<item nick='Nobody' role='none'/>")), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task Banned_user_is_removed_with_301_and_cannot_come_back()
    {
        var (room, alice, bob) = await RoomWithBob();
        var r = await AdminAsync(alice, room, "<item affiliation='outcast' jid='bob@localhost'><reason>bye</reason></item>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"));
        var banned = await ReceivePresenceFrom(bob, room + "/Bob", "unavailable");
        Assert.That(Codes(banned), Does.Contain(301).And.Contain(110));
        Assert.That(Item(banned)!.Attr("affiliation"), Is.EqualTo("outcast"));
        Assert.That(ErrorCondition(await JoinAsync(bob, room, "Bob")), Is.EqualTo("forbidden"));
        var list = await AdminAsync(alice, room, "<item affiliation='outcast'/>", "get");
        Assert.That(X.Matches(list, "<iq type='result'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='bob@localhost'/></query></iq>"), list.ToString());
    }

    [Test]
    public async Task Voice_is_revoked_and_granted_in_a_moderated_room()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_moderatedroom", "1"));
        var bob = await Connect("bob");
        var self = await JoinFullyAsync(bob, room, "Bob");
        Assert.That(Item(self)!.Attr("role"), Is.EqualTo("visitor"));
        await GroupchatAsync(bob, room, "can I speak?");
        Assert.That(ErrorCondition(await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("forbidden"));

        Assert.That((await AdminAsync(alice, room, "<item nick='Bob' role='participant'/>")).Attr("type"), Is.EqualTo("result"));
        var voiced = await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Bob" && Item(e)?.Attr("role") == "participant");
        Assert.That(Codes(voiced), Does.Contain(110));
        await GroupchatAsync(bob, room, "now I can");
        await ReceiveBodyAsync(alice, "now I can");

        Assert.That((await AdminAsync(alice, room, "<item nick='Bob' role='visitor'/>")).Attr("type"), Is.EqualTo("result"));
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Bob" && Item(e)?.Attr("role") == "visitor");
    }

    [Test]
    public async Task Member_admin_and_owner_lists_are_kept_and_only_admins_may_read_them()
    {
        var (room, alice, bob) = await RoomWithBob();
        var set = await AdminAsync(alice, room, "<item affiliation='member' jid='carol@localhost'/><item affiliation='admin' jid='dave@localhost'/>");
        Assert.That(set.Attr("type"), Is.EqualTo("result"));
        var members = await AdminAsync(alice, room, "<item affiliation='member'/>", "get");
        Assert.That(members.Child("query", Ns.MucAdmin)!.Elements().Select(e => e.Attr("jid")), Is.EqualTo(new[] { "carol@localhost" }));
        var admins = await AdminAsync(alice, room, "<item affiliation='admin'/>", "get");
        Assert.That(admins.Child("query", Ns.MucAdmin)!.Elements().Select(e => e.Attr("jid")), Is.EqualTo(new[] { "dave@localhost" }));
        var owners = await AdminAsync(alice, room, "<item affiliation='owner'/>", "get");
        Assert.That(owners.Child("query", Ns.MucAdmin)!.Elements().Select(e => e.Attr("jid")), Is.EqualTo(new[] { "alice@localhost" }));
        Assert.That(ErrorCondition(await AdminAsync(bob, room, "<item affiliation='member'/>", "get")), Is.EqualTo("forbidden"));
        Assert.That(ErrorCondition(await AdminAsync(bob, room, "<item affiliation='member' jid='eve@localhost'/>")), Is.EqualTo("forbidden"));

        // Granting membership to someone present is announced with the new affiliation.
        Assert.That((await AdminAsync(alice, room, "<item affiliation='member' jid='bob@localhost'/>")).Attr("type"), Is.EqualTo("result"));
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Bob" && Item(e)?.Attr("affiliation") == "member");
    }

    [Test]
    public async Task Admins_cannot_change_owners_and_the_last_owner_cannot_leave_the_owner_list()
    {
        var (room, alice, _) = await RoomWithBob();
        await AdminAsync(alice, room, "<item affiliation='admin' jid='dave@localhost'/>");
        var dave = await Connect("dave");
        await JoinFullyAsync(dave, room, "Dave");
        Assert.That(ErrorCondition(await AdminAsync(dave, room, "<item affiliation='none' jid='alice@localhost'/>")), Is.EqualTo("not-allowed"));
        Assert.That(ErrorCondition(await AdminAsync(alice, room, "<item affiliation='member' jid='alice@localhost'/>")), Is.EqualTo("conflict"));
        Assert.That((await AdminAsync(dave, room, "<item affiliation='member' jid='eve@localhost'/>")).Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Moderators_see_the_moderator_list()
    {
        var (room, alice, bob) = await RoomWithBob();
        var mods = await AdminAsync(alice, room, "<item role='moderator'/>", "get");
        Assert.That(mods.Child("query", Ns.MucAdmin)!.Elements().Select(e => e.Attr("nick")), Is.EqualTo(new[] { "Alice" }));
        Assert.That(ErrorCondition(await AdminAsync(bob, room, "<item role='moderator'/>", "get")), Is.EqualTo("forbidden"));
    }
}
