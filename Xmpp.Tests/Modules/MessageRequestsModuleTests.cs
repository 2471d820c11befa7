using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Requests;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// Message requests: Juliet holds messages from strangers; Tybalt is a stranger, the Nurse is in her roster.
[TestFixture]
public sealed class MessageRequestsModuleTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    private static async Task<TestServer> Server(string? dir = null, Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(dir, configure);
        foreach (var u in new[] { "juliet", "tybalt", "nurse" })
            if (await s.Get<IStorage>().Accounts.FindAsync(u) is null) await s.AddUserAsync(u, u + "-pw");
        await s.Get<IStorage>().Rosters.SetItemAsync("juliet", new RosterItem("nurse@localhost", null, [], Subscription.Both, false, false, false, true));
        return s;
    }

    private static Task<TestClient> Online(TestServer s, string user, string resource = "pc") =>
        TestClient.ConnectAsync(s, user, user + "-pw", resource, sendPresence: true);

    private static async Task TurnOn(TestClient c, bool on = true)
    {
        var first = await c.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Ns.Commands}' node='{MessageRequestsModule.SettingsNode}' action='execute'/></iq>");
        var command = first.Child("command", Ns.Commands)!;
        Assert.That(DataForm.Parse(command.Child("x", Ns.DataForms)!).Has("enabled"), Is.True);
        var done = await c.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Ns.Commands}' node='{MessageRequestsModule.SettingsNode}' "
            + $"sessionid='{command.Attr("sessionid")}' action='complete'><x xmlns='jabber:x:data' type='submit'>"
            + $"<field var='enabled'><value>{(on ? "1" : "0")}</value></field></x></command></iq>");
        Assert.That(done.Child("command", Ns.Commands)?.Attr("status"), Is.EqualTo("completed"), done.ToString());
    }

    private static async Task Settle(TestClient c) => await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    private static Func<Element, bool> Chat(string from) => e => e.Name == "message" && e.Attr("type") != "headline" && e.Attr("from")?.StartsWith(from) == true;

    [Test]
    public async Task A_strangers_messages_wait_until_juliet_replies_then_arrive_in_order_and_later_ones_pass()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await TurnOn(juliet);
        await using var tybalt = await Online(server, "tybalt");
        await using var nurse = await Online(server, "nurse");

        await tybalt.SendAsync("<message to='juliet@localhost' type='chat' id='t1'><body>Hello cousin</body></message>");
        await tybalt.SendAsync("<message to='juliet@localhost' type='chat' id='t2'><body>Meet me</body></message>");
        await nurse.SendAsync("<message to='juliet@localhost' type='chat' id='n1'><body>Your mother calls</body></message>");
        Assert.That((await juliet.ReceiveAsync(Chat("nurse@localhost"))).Attr("id"), Is.EqualTo("n1"), "a contact's message passes");
        var notice = await juliet.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "headline");
        Assert.That(notice.Attr("from"), Is.EqualTo("localhost"));
        Assert.That(notice.ChildText("body", Ns.Client), Does.Contain("tybalt@localhost").And.Contain("Hello cousin"));
        Assert.That(await juliet.TryReceiveAsync(Chat("tybalt@localhost"), Quiet), Is.Null, "the stranger's messages wait");
        Assert.That(await juliet.TryReceiveAsync(e => e.Attr("type") == "headline", Quiet), Is.Null, "one notice per stranger");

        var list = await juliet.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Ns.Commands}' node='{MessageRequestsModule.ListNode}' action='execute'/></iq>");
        var form = DataForm.Parse(list.Child("command", Ns.Commands)!.Child("x", Ns.DataForms)!);
        Assert.That(form.Value("tybalt@localhost"), Does.StartWith("2 message(s)"));

        await juliet.SendAsync("<message to='tybalt@localhost' type='chat'><body>Who are you?</body></message>");
        var first = await juliet.ReceiveAsync(Chat("tybalt@localhost"));
        var second = await juliet.ReceiveAsync(Chat("tybalt@localhost"));
        Assert.That(new[] { first.Attr("id"), second.Attr("id") }, Is.EqualTo(new[] { "t1", "t2" }));
        Assert.That(first.Child("delay", Ns.Delay), Is.Not.Null, "stamped with when it arrived");
        await tybalt.SendAsync("<message to='juliet@localhost' type='chat' id='t3'><body>It is I</body></message>");
        Assert.That((await juliet.ReceiveAsync(Chat("tybalt@localhost"))).Attr("id"), Is.EqualTo("t3"), "accepted: no more waiting");
        Assert.That(await server.Get<IStorage>().Archive(MessageRequestsModule.Collection).CountAsync("juliet/tybalt@localhost"), Is.Zero);
    }

    [Test]
    public async Task A_request_waits_across_a_restart_while_juliet_is_offline_and_adding_the_contact_accepts_it()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-requests-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var server = await Server(dir))
            {
                await using (var juliet = await Online(server, "juliet")) await TurnOn(juliet);
                await using var tybalt = await Online(server, "tybalt");
                await tybalt.SendAsync("<message to='juliet@localhost' type='chat' id='t1'><body>While you sleep</body></message>");
                await Settle(tybalt);
                Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("juliet"), Is.Zero, "not in the offline spool");
            }
            await using (var server = await Server(dir))
            {
                await using var juliet = await Online(server, "juliet");
                var reminder = await juliet.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "headline");
                Assert.That(reminder.ChildText("body", Ns.Client), Does.Contain("tybalt@localhost"));
                Assert.That(await juliet.TryReceiveAsync(Chat("tybalt@localhost"), Quiet), Is.Null);
                await juliet.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='tybalt@localhost' name='Tybalt'/></query></iq>");
                Assert.That((await juliet.ReceiveAsync(Chat("tybalt@localhost"))).Attr("id"), Is.EqualTo("t1"));
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task Blocking_a_stranger_throws_the_request_away()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await TurnOn(juliet);
        await using var tybalt = await Online(server, "tybalt");
        await tybalt.SendAsync("<message to='juliet@localhost' type='chat' id='t1'><body>Buy my swords</body></message>");
        await juliet.ReceiveAsync(e => e.Attr("type") == "headline");
        var reply = await juliet.IqAsync("<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='tybalt@localhost'/></block></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"));
        Assert.That(await server.Get<IStorage>().Archive(MessageRequestsModule.Collection).CountAsync("juliet/tybalt@localhost"), Is.Zero);
        await juliet.IqAsync("<iq type='set'><unblock xmlns='urn:xmpp:blocking'/></iq>");
        await juliet.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='tybalt@localhost'/></query></iq>");
        Assert.That(await juliet.TryReceiveAsync(Chat("tybalt@localhost"), Quiet), Is.Null, "nothing was kept to deliver");
    }

    [Test]
    public async Task A_stranger_past_the_bound_is_told_and_turning_requests_off_delivers_what_waits()
    {
        await using var server = await Server(configure: o => o["Xmpp:MessageRequests:MaxMessagesPerSender"] = "3");
        await using var juliet = await Online(server, "juliet");
        await TurnOn(juliet);
        await using var tybalt = await Online(server, "tybalt");
        for (int i = 1; i <= 4; i++)
            await tybalt.SendAsync($"<message to='juliet@localhost' type='chat' id='t{i}'><body>{i}</body></message>");
        var error = await tybalt.ReceiveAsync(e => e.Attr("type") == "error");
        Assert.That(error.Attr("id"), Is.EqualTo("t4"));
        Assert.That(error.Child("error", Ns.Client)?.Child("resource-constraint", Ns.StanzaErrors), Is.Not.Null);

        await TurnOn(juliet, on: false);
        var ids = new List<string?>();
        for (int i = 0; i < 3; i++) ids.Add((await juliet.ReceiveAsync(Chat("tybalt@localhost"))).Attr("id"));
        Assert.That(ids, Is.EqualTo(new[] { "t1", "t2", "t3" }));
    }

    [Test]
    public async Task Without_requests_turned_on_a_strangers_message_arrives_directly()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await using var tybalt = await Online(server, "tybalt");
        await tybalt.SendAsync("<message to='juliet@localhost' type='chat' id='t1'><body>Hi</body></message>");
        Assert.That((await juliet.ReceiveAsync(Chat("tybalt@localhost"))).Attr("id"), Is.EqualTo("t1"));
    }
}
