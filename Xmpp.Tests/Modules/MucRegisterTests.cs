using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0045 §7.10 registering with a room (a reserved nickname and membership) and §7.12 discovering the reserved nick.
[TestFixture]
public sealed class MucRegisterTests : MucTestBase
{
    public static Task<Element> RegisterAsync(TestClient c, string room, string nick) =>
        c.IqAsync($"<iq type='set' to='{room}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>" +
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>" +
            $"<field var='muc#register_roomnick'><value>{nick}</value></field></x></query></iq>");

    private static async Task<string?> ReservedNick(TestClient c, string room)
    {
        var info = await c.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>");
        Assert.That(info.Attr("type"), Is.EqualTo("result"), info.ToString());
        return info.Child("query", Ns.DiscoInfo)!.Child("identity", Ns.DiscoInfo)?.Attr("name");
    }

    [Test]
    public async Task Registering_reserves_the_nick_makes_a_member_and_others_get_conflict()
    {
        var alice = await Connect("alice");
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        var info = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")),
            Does.Contain(Ns.Register), "the room announces registration (§7.10)");
        var form = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='jabber:iq:register'/></iq>");
        Assert.That(form.Child("query", Ns.Register)!.Child("x", Ns.DataForms)!.ToString(), Does.Contain("muc#register_roomnick"));
        Assert.That(await ReservedNick(bob, room), Is.Null);

        Assert.That((await RegisterAsync(bob, room, "Bobby")).Attr("type"), Is.EqualTo("result"));
        Assert.That(await ReservedNick(bob, room), Is.EqualTo("Bobby"));
        var again = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='jabber:iq:register'/></iq>");
        Assert.That(again.Child("query", Ns.Register)!.Child("registered", Ns.Register), Is.Not.Null);
        Assert.That(again.Child("query", Ns.Register)!.ChildText("username", Ns.Register), Is.EqualTo("Bobby"));
        var members = await AdminAsync(alice, room, "<item affiliation='member'/>", "get");
        Assert.That(members.ToString(), Does.Contain("bob@localhost"));

        var carol = await Connect("carol");
        Assert.That(ErrorCondition(await JoinAsync(carol, room, "bobby")), Is.EqualTo("conflict"), "compared as RFC 8266 nicknames");
        Assert.That(ErrorCondition(await RegisterAsync(carol, room, "Bobby")), Is.EqualTo("conflict"));
        await JoinFullyAsync(carol, room, "Carol");
        await carol.SendAsync($"<presence to='{room}/Bobby'/>");
        var refused = await carol.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(refused), Is.EqualTo("conflict"));

        var self = await JoinAsync(bob, room, "Bobby");
        Assert.That(Item(self)!.Attr("affiliation"), Is.EqualTo("member"));
    }

    [Test]
    public async Task Unregistering_frees_the_nick_and_the_membership()
    {
        var alice = await Connect("alice");
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await RegisterAsync(bob, room, "Bobby");
        var r = await bob.IqAsync($"<iq type='set' to='{room}'><query xmlns='jabber:iq:register'><remove/></query></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"));
        Assert.That(await ReservedNick(bob, room), Is.Null);
        var members = await AdminAsync(alice, room, "<item affiliation='member'/>", "get");
        Assert.That(members.ToString(), Does.Not.Contain("bob@localhost"));
        var carol = await Connect("carol");
        Assert.That(Codes(await JoinAsync(carol, room, "Bobby")), Does.Contain(110));
    }

    [Test]
    public async Task Members_only_rooms_refuse_registration_to_strangers_and_banned_users_are_forbidden()
    {
        var alice = await Connect("alice");
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_membersonly", "1"));
        var bob = await Connect("bob");
        Assert.That(ErrorCondition(await RegisterAsync(bob, room, "Bobby")), Is.EqualTo("registration-required"));
        await AdminAsync(alice, room, "<item affiliation='member' jid='bob@localhost'/>");
        Assert.That((await RegisterAsync(bob, room, "Bobby")).Attr("type"), Is.EqualTo("result"));

        await AdminAsync(alice, room, "<item affiliation='outcast' jid='carol@localhost'/>");
        var carol = await Connect("carol");
        Assert.That(ErrorCondition(await RegisterAsync(carol, room, "Carol")), Is.EqualTo("forbidden"));
    }
}
