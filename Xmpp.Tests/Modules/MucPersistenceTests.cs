using Xmpp.Protocol;
using Xmpp.Server.Modules.Muc;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// Rooms in storage: persistent rooms keep configuration, affiliations, subject and history across restarts and leave
/// memory when empty; temporary rooms are destroyed when the last occupant leaves.
[TestFixture]
public sealed class MucPersistenceTests
{
    private const string Service = "conference.localhost";
    private string _dir = null!;

    [SetUp]
    public void Prepare()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-muc-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Cleanup()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static MucService Muc(TestServer s) => s.Get<MucModule>().Services[Service];

    private static async Task<TestClient> Connect(TestServer s, string user) =>
        await TestClient.ConnectAsync(s, user, user + "-pw", "pc", sendPresence: true);

    private static async Task Leave(TestClient c, string room, string nick)
    {
        await c.SendAsync($"<presence to='{room}/{nick}' type='unavailable'/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/" + nick && e.Attr("type") == "unavailable");
    }

    [Test]
    public async Task Persistent_room_survives_a_restart_with_config_members_subject_and_history()
    {
        var room = "tea@" + Service;
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await s.AddUserAsync("alice", "alice-pw");
            await s.AddUserAsync("bob", "bob-pw");
            await using var alice = await Connect(s, "alice");
            await MucTestBase.CreateInstantAsync(alice, room, "Alice");
            var r = await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "1"),
                ("muc#roomconfig_membersonly", "1"), ("muc#roomconfig_roomname", "Tea room"));
            Assert.That(r.Attr("type"), Is.EqualTo("result"));
            await MucTestBase.AdminAsync(alice, room, "<item affiliation='member' jid='bob@localhost'/>");
            await alice.SendAsync($"<message to='{room}' type='groupchat'><subject>Oolong</subject></message>");
            await alice.SendAsync($"<message to='{room}' type='groupchat'><body>kept</body></message>");
            await alice.ReceiveAsync(e => e.ChildText("body", Ns.Client) == "kept");
            await Leave(alice, room, "Alice");
            // Empty and persistent: the room leaves memory but not storage.
            Assert.That(await Wait.UntilAsync(() => Muc(s).LoadedRooms == 0), Is.True);
        }
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await using var bob = await Connect(s, "bob");
            var items = await bob.IqAsync($"<iq type='get' to='{Service}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
            Assert.That(X.Matches(items, $"<iq><query xmlns='http://jabber.org/protocol/disco#items'><item jid='{room}' name='Tea room'/></query></iq>"), items.ToString());
            var self = await MucTestBase.JoinAsync(bob, room, "Bob");
            Assert.That(MucTestBase.Codes(self), Does.Contain(110).And.Not.Contain(201));
            Assert.That(self.Child("x", Ns.MucUser)!.Child("item", Ns.MucUser)!.Attr("affiliation"), Is.EqualTo("member"));
            var history = await bob.ReceiveAsync(e => e.ChildText("body", Ns.Client) == "kept");
            Assert.That(history.Child("delay", Ns.Delay), Is.Not.Null);
            Assert.That(history.Attr("from"), Is.EqualTo(room + "/Alice"));
            var subject = await bob.ReceiveAsync(e => e.Child("subject", Ns.Client) is not null && e.Child("body", Ns.Client) is null);
            Assert.That(subject.ChildText("subject", Ns.Client), Is.EqualTo("Oolong"));
            var info = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
            var features = info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
            Assert.That(features, Does.Contain("muc_persistent").And.Contain("muc_membersonly"));
        }
    }

    [Test]
    public async Task Reserved_nicknames_survive_a_restart()
    {
        var room = "names@" + Service;
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await s.AddUserAsync("alice", "alice-pw");
            await s.AddUserAsync("bob", "bob-pw");
            await s.AddUserAsync("carol", "carol-pw");
            await using var alice = await Connect(s, "alice");
            await MucTestBase.CreateInstantAsync(alice, room, "Alice");
            await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "1"));
            await using var bob = await Connect(s, "bob");
            Assert.That((await MucRegisterTests.RegisterAsync(bob, room, "Bobby")).Attr("type"), Is.EqualTo("result"));
        }
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await using var carol = await Connect(s, "carol");
            var refused = await MucTestBase.JoinAsync(carol, room, "Bobby");
            Assert.That(refused.Child("error", Ns.Client)?.Child("conflict", Ns.StanzaErrors), Is.Not.Null, refused.ToString());
            await using var bob = await Connect(s, "bob");
            var info = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>");
            Assert.That(info.Child("query", Ns.DiscoInfo)!.Child("identity", Ns.DiscoInfo)?.Attr("name"), Is.EqualTo("Bobby"));
        }
    }

    [Test]
    public async Task A_moderated_message_stays_a_tombstone_after_a_restart()
    {
        var room = "quiet@" + Service;
        string id;
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await s.AddUserAsync("alice", "alice-pw");
            await s.AddUserAsync("bob", "bob-pw");
            await using var alice = await Connect(s, "alice");
            await MucTestBase.CreateInstantAsync(alice, room, "Alice");
            await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "1"));
            await alice.SendAsync($"<message to='{room}' type='groupchat'><body>regret</body></message>");
            id = (await alice.ReceiveAsync(e => e.ChildText("body", Ns.Client) == "regret")).Child("stanza-id", Ns.StanzaId)!.Attr("id")!;
            var r = await alice.IqAsync($"<iq type='set' to='{room}'><moderate xmlns='urn:xmpp:message-moderate:1' id='{id}'>" +
                "<retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>");
            Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        }
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await using var bob = await Connect(s, "bob");
            await MucTestBase.JoinAsync(bob, room, "Bob");
            var history = await bob.ReceiveAsync(e => e.Name == "message" && e.Child("stanza-id", Ns.StanzaId)?.Attr("id") == id);
            Assert.That(history.Child("body", Ns.Client), Is.Null);
            Assert.That(history.Child("retracted", Ns.MessageRetract), Is.Not.Null);
            Assert.That(history.Child("x", Ns.MucUser), Is.Null, "history on join never carries the archived real JID");
        }
    }

    [Test]
    public async Task Temporary_room_is_destroyed_when_the_last_occupant_leaves()
    {
        await using var s = await TestServer.StartAsync(_dir);
        await s.AddUserAsync("alice", "alice-pw");
        await using var alice = await Connect(s, "alice");
        var room = "brief@" + Service;
        await MucTestBase.CreateInstantAsync(alice, room, "Alice");
        await Leave(alice, room, "Alice");
        Assert.That(await Wait.UntilAsync(() => Muc(s).LoadedRooms == 0), Is.True);
        var info = await alice.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("error", Ns.Client)?.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null);
        var again = await MucTestBase.JoinAsync(alice, room, "Alice");
        Assert.That(MucTestBase.Codes(again), Does.Contain(201));
    }

    [Test]
    public async Task Turning_persistence_off_removes_the_room_from_storage()
    {
        var room = "fleeting@" + Service;
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await s.AddUserAsync("alice", "alice-pw");
            await using var alice = await Connect(s, "alice");
            await MucTestBase.CreateInstantAsync(alice, room, "Alice");
            await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "1"));
            await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "0"));
            await Leave(alice, room, "Alice");
            Assert.That(await Wait.UntilAsync(() => Muc(s).LoadedRooms == 0), Is.True);
        }
        await using (var s = await TestServer.StartAsync(_dir))
        {
            await using var alice = await Connect(s, "alice");
            var info = await alice.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
            Assert.That(info.Child("error", Ns.Client)?.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null);
        }
    }
}
