using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0045 §7.8 invitations (mediated, and XEP-0249 direct ones passing through) and §10.9 room destruction.
[TestFixture]
public sealed class MucInviteTests : MucTestBase
{
    [Test]
    public async Task Mediated_invitation_reaches_the_invitee_from_the_room_and_admits_it_to_a_members_only_room()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_membersonly", "1"));
        var carol = await Connect("carol");
        await alice.SendAsync($"<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='carol@localhost'><reason>join us</reason></invite></x></message>");
        var invite = await carol.ReceiveAsync(e => e.Name == "message" && e.Child("x", Ns.MucUser) is not null);
        Assert.That(invite.Attr("from"), Is.EqualTo(room));
        Assert.That(X.Matches(invite, "<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='alice@localhost'><reason>join us</reason></invite></x></message>"), invite.ToString());
        Assert.That(invite.ChildText("body", Ns.Client), Is.Not.Empty);
        Assert.That(Codes(await JoinFullyAsync(carol, room, "Carol")), Does.Contain(110));
    }

    [Test]
    public async Task Invitee_declines_and_the_inviter_is_told()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var carol = await Connect("carol");
        await carol.SendAsync($"<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'><decline to='alice@localhost'><reason>busy</reason></decline></x></message>");
        var decline = await alice.ReceiveAsync(e => e.Name == "message" && e.Child("x", Ns.MucUser)?.Child("decline", Ns.MucUser) is not null);
        Assert.That(decline.Attr("from"), Is.EqualTo(room));
        Assert.That(X.Matches(decline, "<message><x xmlns='http://jabber.org/protocol/muc#user'><decline from='carol@localhost'><reason>busy</reason></decline></x></message>"));
    }

    [Test]
    public async Task Non_occupants_cannot_send_mediated_invitations()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await bob.SendAsync($"<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='carol@localhost'/></x></message>");
        Assert.That(ErrorCondition(await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("not-acceptable"));
    }

    [Test]
    public async Task Direct_invitation_passes_between_users_unchanged()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        var bob = await Connect("bob");
        await alice.SendAsync($"<message to='bob@localhost'><x xmlns='jabber:x:conference' jid='{room}' reason='come'/></message>");
        var m = await bob.ReceiveAsync(e => e.Name == "message" && e.Child("x", Ns.ConferenceInvite) is not null);
        Assert.That(m.Child("x", Ns.ConferenceInvite)!.Attr("jid"), Is.EqualTo(room));
        Assert.That(m.Attr("from"), Is.EqualTo("alice@localhost/pc"));
    }

    [Test]
    public async Task Owner_destroys_the_room_and_occupants_learn_the_alternate_venue()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        Assert.That(ErrorCondition(await bob.IqAsync($"<iq type='set' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>")),
            Is.EqualTo("forbidden"));
        var r = await alice.IqAsync($"<iq type='set' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>" +
            $"<destroy jid='elsewhere@{Service}'><reason>moving</reason></destroy></query></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"));
        var gone = await ReceivePresenceFrom(bob, room + "/Bob", "unavailable");
        Assert.That(X.Matches(gone, $"<presence><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>" +
            $"<destroy jid='elsewhere@{Service}'><reason>moving</reason></destroy></x></presence>"), gone.ToString());
        var info = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(ErrorCondition(info), Is.EqualTo("item-not-found"));
    }
}
