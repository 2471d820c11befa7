using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0045 §7.13 a visitor requests voice, §8.6 a moderator approves it.
[TestFixture]
public sealed class MucVoiceRequestTests : MucTestBase
{
    private const string Request = "<x xmlns='jabber:x:data' type='submit'>" +
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>" +
        "<field var='muc#role' type='list-single'><value>participant</value></field></x>";

    private static string Approval(string nick, bool allow) => "<x xmlns='jabber:x:data' type='submit'>" +
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>" +
        "<field var='muc#role'><value>participant</value></field>" +
        $"<field var='muc#roomnick'><value>{nick}</value></field>" +
        $"<field var='muc#request_allow'><value>{(allow ? "true" : "false")}</value></field></x>";

    private async Task<(TestClient Alice, TestClient Bob, string Room)> ModeratedRoomWithVisitor()
    {
        var alice = await Connect("alice");
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_moderatedroom", "1"));
        var bob = await Connect("bob");
        var self = await JoinFullyAsync(bob, room, "Bob");
        Assert.That(Item(self)!.Attr("role"), Is.EqualTo("visitor"));
        await ReceivePresenceFrom(alice, room + "/Bob");
        return (alice, bob, room);
    }

    private static Task<Element> ReceiveVoiceRequest(TestClient moderator, string room) =>
        moderator.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == room && e.Child("x", Ns.DataForms) is not null);

    [Test]
    public async Task Visitor_requests_voice_the_moderator_approves_and_everyone_sees_the_new_role()
    {
        var (alice, bob, room) = await ModeratedRoomWithVisitor();
        await bob.SendAsync($"<message to='{room}'>{Request}</message>");
        var request = await ReceiveVoiceRequest(alice, room);
        var form = DataForm.In(request)!;
        Assert.That(form.Type, Is.EqualTo("form"));
        Assert.That(form.FormType, Is.EqualTo(Ns.MucRequest));
        Assert.That(form.Value("muc#roomnick"), Is.EqualTo("Bob"));
        Assert.That(form.Value("muc#jid"), Is.EqualTo("bob@localhost/pc"));
        Assert.That(form.Value("muc#request_allow"), Is.EqualTo("false"));

        await alice.SendAsync($"<message to='{room}'>{Approval("Bob", true)}</message>");
        var bobSelf = await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Bob" && Codes(e).Contains(110));
        Assert.That(Item(bobSelf)!.Attr("role"), Is.EqualTo("participant"));
        Assert.That(Item(bobSelf)!.Child("actor", Ns.MucUser)?.Attr("nick"), Is.EqualTo("Alice"));
        var seen = await ReceivePresenceFrom(alice, room + "/Bob");
        Assert.That(Item(seen)!.Attr("role"), Is.EqualTo("participant"));
        await GroupchatAsync(bob, room, "now I speak");
        await ReceiveBodyAsync(alice, "now I speak");
    }

    [Test]
    public async Task A_denied_request_changes_nothing_and_only_moderators_may_decide()
    {
        var (alice, bob, room) = await ModeratedRoomWithVisitor();
        var carol = await Connect("carol");
        await AdminAsync(alice, room, "<item affiliation='member' jid='carol@localhost'/>");
        await JoinFullyAsync(carol, room, "Carol");

        await carol.SendAsync($"<message to='{room}'>{Approval("Bob", true)}</message>");
        var refused = await carol.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(refused), Is.EqualTo("forbidden"));
        await alice.SendAsync($"<message to='{room}'>{Approval("Bob", false)}</message>");
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Bob", Quiet), Is.Null);

        await carol.SendAsync($"<message to='{room}'>{Request}</message>");
        var notVisitor = await carol.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(notVisitor), Is.EqualTo("not-acceptable"));
        await alice.SendAsync($"<message to='{room}'>{Approval("Nobody", true)}</message>");
        var gone = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(gone), Is.EqualTo("item-not-found"));
        var dave = await Connect("dave");
        await dave.SendAsync($"<message to='{room}'>{Request}</message>");
        Assert.That(ErrorCondition(await dave.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error")), Is.EqualTo("not-acceptable"));
    }
}
