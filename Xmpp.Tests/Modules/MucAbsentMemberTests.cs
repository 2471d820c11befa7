using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// Members-only rooms notify members who are not in the room when a message mentions them (Muc:NotifyAbsentMembers
/// "mentions", the default), at most once per Muc:NotifyIntervalSeconds.
[TestFixture]
public sealed class MucAbsentMemberTests : MucTestBase
{
    /// A members-only room owned by alice with bob (reserved nick "Bobby") and carol as members, none of them inside.
    private async Task<(TestClient Alice, string Room)> MembersOnlyRoom()
    {
        var alice = await Connect("alice");
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_membersonly", "1"), ("muc#roomconfig_roomname", "Tea"));
        await AdminAsync(alice, room, "<item affiliation='member' jid='bob@localhost'/><item affiliation='member' jid='carol@localhost'/>");
        await using (var bob = await TestClient.ConnectAsync(Server, "bob", "bob-pw", "phone", sendPresence: true))
            Assert.That((await MucRegisterTests.RegisterAsync(bob, room, "Bobby")).Attr("type"), Is.EqualTo("result"));
        Assert.That(await Wait.UntilAsync(() => Server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")) is null), Is.True);
        return (alice, room);
    }

    private static bool IsNotification(Element e, string room) =>
        e.Name == "message" && e.Attr("from") == room && e.Attr("type") == "normal" && e.Child("forwarded", Ns.Forward) is not null;

    [Test]
    public async Task A_mentioned_offline_member_finds_the_notification_on_reconnect()
    {
        var (alice, room) = await MembersOnlyRoom();
        await GroupchatAsync(alice, room, "hey bobby, the tea is ready");
        var original = await ReceiveBodyAsync(alice, "hey bobby, the tea is ready");

        var bob = await Connect("bob", "phone");
        var note = await bob.ReceiveAsync(e => IsNotification(e, room));
        Assert.That(note.Attr("to"), Does.StartWith("bob@localhost"));
        Assert.That(note.ChildText("body", Ns.Client), Does.Contain("Alice mentioned you in Tea").And.Contain("the tea is ready"));
        var forwarded = note.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!;
        Assert.That(forwarded.Attr("from"), Is.EqualTo(room + "/Alice"));
        Assert.That(forwarded.Child("stanza-id", Ns.StanzaId)?.Attr("id"), Is.EqualTo(original.Child("stanza-id", Ns.StanzaId)!.Attr("id")));
        Assert.That(note.Child("x", Ns.ConferenceInvite)?.Attr("jid"), Is.EqualTo(room));
        Assert.That(note.ToString(), Does.Not.Contain("alice@localhost"), "a semi-anonymous room keeps the sender's real JID");
    }

    [Test]
    public async Task Bare_jid_and_reference_mentions_count_and_other_messages_notify_nobody()
    {
        var (alice, room) = await MembersOnlyRoom();
        var carol = await Connect("carol");
        await GroupchatAsync(alice, room, "nothing for anyone");
        await ReceiveBodyAsync(alice, "nothing for anyone");
        Assert.That(await carol.TryReceiveAsync(e => IsNotification(e, room), Quiet), Is.Null);

        await GroupchatAsync(alice, room, "ask carol@localhost");
        Assert.That((await carol.ReceiveAsync(e => IsNotification(e, room))).ChildText("body", Ns.Client), Does.Contain("ask carol@localhost"));

        var bob = await Connect("bob", "laptop");
        await alice.SendAsync($"<message to='{room}' type='groupchat'><body>see above</body>" +
            "<reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:bob@localhost' begin='0' end='3'/></message>");
        Assert.That((await bob.ReceiveAsync(e => IsNotification(e, room))).ChildText("body", Ns.Client), Does.Contain("see above"));
        Assert.That(await carol.TryReceiveAsync(e => IsNotification(e, room), Quiet), Is.Null);
    }

    [Test]
    public async Task Notifications_are_rate_limited_per_member_and_skip_members_in_the_room_and_open_rooms()
    {
        var (alice, room) = await MembersOnlyRoom();
        var carol = await Connect("carol");
        await GroupchatAsync(alice, room, "carol@localhost one");
        await carol.ReceiveAsync(e => IsNotification(e, room));
        await GroupchatAsync(alice, room, "carol@localhost two");
        await ReceiveBodyAsync(alice, "carol@localhost two");
        Assert.That(await carol.TryReceiveAsync(e => IsNotification(e, room), Quiet), Is.Null);

        var bob = await Connect("bob", "laptop");
        await JoinFullyAsync(bob, room, "Bobby");
        await GroupchatAsync(alice, room, "Bobby, you are here");
        await ReceiveBodyAsync(bob, "Bobby, you are here");
        Assert.That(await bob.TryReceiveAsync(e => IsNotification(e, room), Quiet), Is.Null);

        var open = NewRoom();
        await CreateInstantAsync(alice, open, "Alice");
        await AdminAsync(alice, open, "<item affiliation='member' jid='dave@localhost'/>");
        var dave = await Connect("dave");
        await GroupchatAsync(alice, open, "dave@localhost?");
        await ReceiveBodyAsync(alice, "dave@localhost?");
        Assert.That(await dave.TryReceiveAsync(e => IsNotification(e, open), Quiet), Is.Null);
    }
}
