using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Csi;
using Xmpp.Server.Sessions;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0352 Client State Indication: Romeo's phone goes into his pocket and says so. Juliet's words reach it at once;
/// her comings and goings and her typing wait until he looks again, and nothing he was owed is lost if the phone dies.
[TestFixture]
public sealed class CsiModuleTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private static async Task<TestServer> Server()
    {
        var s = await TestServer.StartAsync();
        foreach (var user in new[] { "romeo", "juliet", "nurse" }) await s.AddUserAsync(user, user + "-pw");
        // Romeo and Juliet see each other's presence (RFC 6121 §3: subscription both ways).
        await Seed(s, "romeo", "juliet@localhost");
        await Seed(s, "juliet", "romeo@localhost");
        return s;
    }

    private static async Task Seed(TestServer s, string user, string contact) =>
        await s.Get<IStorage>().Rosters.SetItemAsync(user,
            new RosterItem(contact, null, Array.Empty<string>(), Subscription.Both, AskOut: false, PendingIn: false, PreApproved: false, InRoster: true));

    private static async Task<TestClient> Online(TestServer s, string user, string resource, string? presence = null)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        await c.SendAsync(presence ?? "<presence/>");
        await Settle(c);
        return c;
    }

    /// A ping round trip: the stream has handled everything this client sent before it, nonzas included.
    private static async Task Settle(TestClient c) =>
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    private static async Task Inactive(TestClient c)
    {
        await c.SendRawAsync("<inactive xmlns='urn:xmpp:csi:0'/>");
        await Settle(c);
    }

    /// What arrived from others within the quiet window (the client's own presence echo is left out).
    private static async Task<List<Element>> Stanzas(TestClient c, string name) =>
        (await c.DrainAsync(Quiet)).Where(e => e.Name == name && e.Attr("from") != c.Jid!.ToString()).ToList();

    private static Func<Element, bool> From(string jid, string name) => e => e.Name == name && e.Attr("from") == jid;

    [Test]
    public async Task Csi_is_offered_after_authentication_and_not_before()
    {
        await using var server = await Server();
        await using var open = await TestClient.OpenAsync(server);
        Assert.That(open.Features!.Child("csi", Ns.Csi), Is.Null);

        await using var romeo = await TestClient.ConnectAsync(server, "romeo", "romeo-pw", "phone");
        Assert.That(romeo.Features!.Child("csi", Ns.Csi), Is.Not.Null);
    }

    [Test]
    public async Task An_inactive_phone_gets_messages_at_once_and_presence_only_when_active_latest_per_contact_resource()
    {
        await using var server = await Server();
        await using var phone = await Online(server, "romeo", "phone");
        await Inactive(phone);

        await using var balcony = await Online(server, "juliet", "balcony");
        await using var tomb = await Online(server, "juliet", "tomb");
        await balcony.SendAsync("<presence><show>away</show></presence>");
        await balcony.SendAsync("<presence><show>dnd</show><status>do not disturb</status></presence>");
        await Settle(balcony);
        await balcony.SendAsync("<message to='romeo@localhost' type='chat' id='m1'><body>Art thou not Romeo?</body></message>");

        Assert.That((await phone.ReceiveAsync("message")).Attr("id"), Is.EqualTo("m1"), "a message with a body is not held");
        Assert.That(await Stanzas(phone, "presence"), Is.Empty, "presence waits while inactive");

        await phone.SendRawAsync("<active xmlns='urn:xmpp:csi:0'/>");
        var presence = await Stanzas(phone, "presence");
        Assert.That(presence.Select(p => p.Attr("from")), Is.EqualTo(new[] { "juliet@localhost/tomb", "juliet@localhost/balcony" }),
            "one presence per contact resource, in the order of their latest change");
        Assert.That(presence[1].ChildText("show", Ns.Client), Is.EqualTo("dnd"));

        // Active again: presence flows at once.
        await tomb.SendAsync("<presence type='unavailable'/>");
        await phone.ReceiveAsync(From("juliet@localhost/tomb", "presence"));
    }

    [Test]
    public async Task Typing_notifications_wait_and_only_the_latest_is_delivered()
    {
        await using var server = await Server();
        await using var phone = await Online(server, "romeo", "phone");
        await using var balcony = await Online(server, "juliet", "balcony");
        await Inactive(phone);

        await balcony.SendAsync("<message to='romeo@localhost/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await balcony.SendAsync("<message to='romeo@localhost/phone' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await Settle(balcony);
        Assert.That(await Stanzas(phone, "message"), Is.Empty);

        await phone.SendRawAsync("<active xmlns='urn:xmpp:csi:0'/>");
        var got = await Stanzas(phone, "message");
        Assert.That(got, Has.Count.EqualTo(1));
        Assert.That(got[0].Child("paused", Ns.ChatStates), Is.Not.Null);
    }

    [Test]
    public async Task A_message_with_a_body_makes_the_typing_notification_before_it_obsolete()
    {
        await using var server = await Server();
        await using var phone = await Online(server, "romeo", "phone");
        await using var balcony = await Online(server, "juliet", "balcony");
        await Inactive(phone);

        await balcony.SendAsync("<message to='romeo@localhost/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await balcony.SendAsync("<message to='romeo@localhost/phone' type='chat' id='m2'><body>Wherefore</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>");
        Assert.That((await phone.ReceiveAsync("message")).Attr("id"), Is.EqualTo("m2"));

        await phone.SendRawAsync("<active xmlns='urn:xmpp:csi:0'/>");
        Assert.That(await Stanzas(phone, "message"), Is.Empty, "the stale 'composing' is not delivered after the message");
    }

    [TestCase("<message to='romeo@localhost/phone' type='chat' id='u1'><request xmlns='urn:xmpp:receipts'/></message>", "message")]
    [TestCase("<message to='romeo@localhost/phone' id='u1'><propose xmlns='urn:xmpp:jingle-message:0' id='call'/></message>", "message")]
    [TestCase("<iq to='romeo@localhost/phone' type='get' id='u1'><ping xmlns='urn:xmpp:ping'/></iq>", "iq")]
    [TestCase("<presence to='romeo@localhost' type='subscribe' id='u1'/>", "presence")]
    public async Task Urgent_stanzas_pass_while_inactive(string stanza, string name)
    {
        await using var server = await Server();
        await using var phone = await Online(server, "romeo", "phone");
        await using var nurse = await Online(server, "nurse", "kitchen");
        await Inactive(phone);

        await nurse.SendAsync(stanza);
        var got = await phone.ReceiveAsync(e => e.Name == name && e.Attr("from")?.StartsWith("nurse@localhost") == true);
        Assert.That(got.Attr("id"), Is.EqualTo("u1"));
    }

    [Test]
    public async Task Held_messages_are_not_lost_when_the_inactive_phone_drops_off()
    {
        await using var server = await Server();
        await using var balcony = await Online(server, "juliet", "balcony");
        var phone = await Online(server, "romeo", "phone");
        await Inactive(phone);

        await balcony.SendAsync("<message to='romeo@localhost/phone' type='chat' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>");
        await balcony.SendAsync("<message to='romeo@localhost/phone' type='chat' id='d1'><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>");
        await balcony.SendAsync("<presence><show>away</show></presence>");
        await Settle(balcony);
        Assert.That(await Stanzas(phone, "message"), Is.Empty, "ticks are held while inactive");

        phone.Abort();
        await phone.DisposeAsync();
        var spool = server.Get<IStorage>().Archive("offline");
        Assert.That(await Wait.UntilAsync(async () => await spool.CountAsync("romeo") == 2), "both ticks went to the offline spool");

        await using var again = await TestClient.ConnectAsync(server, "romeo", "romeo-pw", "phone");
        await again.SendAsync("<presence/>");
        var ids = new List<string?>();
        for (int i = 0; i < 2; i++) ids.Add((await again.ReceiveAsync("message")).Attr("id"));
        Assert.That(ids, Is.EqualTo(new[] { "r1", "d1" }));
    }

    [Test]
    public async Task A_full_queue_is_delivered_without_waiting_for_active()
    {
        await using var server = await Server();
        await using var phone = await Online(server, "romeo", "phone");
        await using var balcony = await Online(server, "juliet", "balcony");
        await Inactive(phone);

        for (int i = 1; i < CsiModule.MaxHeld; i++)
            await balcony.SendAsync($"<message to='romeo@localhost/phone' type='chat' id='q{i}'><displayed xmlns='urn:xmpp:chat-markers:0' id='m{i}'/></message>");
        await Settle(balcony);
        Assert.That(await phone.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);

        await balcony.SendAsync($"<message to='romeo@localhost/phone' type='chat' id='q{CsiModule.MaxHeld}'><displayed xmlns='urn:xmpp:chat-markers:0' id='last'/></message>");
        var ids = new List<string?>();
        for (int i = 0; i < CsiModule.MaxHeld; i++) ids.Add((await phone.ReceiveAsync("message")).Attr("id"));
        Assert.That(ids, Is.EqualTo(Enumerable.Range(1, CsiModule.MaxHeld).Select(i => "q" + i)));
        Assert.That(server.Get<ISessionDirectory>().Find(phone.Jid!), Is.Not.Null, "the phone stays connected");
    }

    [Test]
    public async Task Copies_from_another_device_wait_unless_they_carry_a_body()
    {
        await using var server = await Server();
        await using var phone = await Online(server, "romeo", "phone");
        Assert.That((await phone.IqAsync("<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>")).Attr("type"), Is.EqualTo("result"));
        await using var pc = await Online(server, "romeo", "pc");
        await using var balcony = await Online(server, "juliet", "balcony");
        await Inactive(phone);

        await pc.SendAsync("<message to='juliet@localhost/balcony' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await pc.SendAsync("<message to='juliet@localhost/balcony' type='chat' id='c2'><body>It is the east</body></message>");
        var copy = await phone.ReceiveAsync(e => e.Name == "message");
        Assert.That(copy.Child("sent", Ns.Carbons)?.Child("forwarded", Ns.Forward)?.Child("message", Ns.Client)?.Attr("id"), Is.EqualTo("c2"));

        await pc.SendAsync("<message to='juliet@localhost/balcony' type='chat' id='c3'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await Settle(pc);
        Assert.That(await Stanzas(phone, "message"), Is.Empty, "the copy of a chat state waits");

        await phone.SendRawAsync("<active xmlns='urn:xmpp:csi:0'/>");
        var later = await Stanzas(phone, "message");
        Assert.That(later.Select(m => m.Child("sent", Ns.Carbons)?.Child("forwarded", Ns.Forward)?.Child("message", Ns.Client)?.Attr("id")),
            Is.EqualTo(new[] { "c3" }), "the held 'composing' copy was superseded by the message, and only the 'paused' one remains");
    }
}
