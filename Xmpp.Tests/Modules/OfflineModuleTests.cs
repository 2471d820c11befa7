using Xmpp.Server.Sessions;
using Xmpp.Protocol;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0160 offline storage and the "sent / delivered / read" ticks (XEP-0184, XEP-0333) across offline periods.
[TestFixture]
public sealed class OfflineModuleTests
{
    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(configure: configure);
        await s.AddUserAsync("alice", "alice-pw");
        await s.AddUserAsync("bob", "bob-pw");
        return s;
    }

    private static async Task<TestClient> Online(TestServer s, string user, string resource)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        await c.SendAsync("<presence/>");
        return c;
    }

    private static async Task Settle(TestClient c) =>
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    [Test]
    public async Task Messages_to_an_offline_user_arrive_in_order_exactly_once_with_delay_stamps()
    {
        await using var server = await Server();
        await using (var alice = await Online(server, "alice", "pc"))
        {
            for (int i = 1; i <= 25; i++)
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>message {i}</body></message>");
            await Settle(alice);
        }
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(25));

        await using var bob = await Online(server, "bob", "phone");
        var got = new List<Xmpp.Protocol.Xml.Element>();
        for (int i = 0; i < 25; i++) got.Add(await bob.ReceiveAsync("message"));
        Assert.That(got.Select(m => m.Attr("id")), Is.EqualTo(Enumerable.Range(1, 25).Select(i => "m" + i)));
        Assert.That(got.All(m => m.Attr("from") == "alice@localhost/pc"));
        Assert.That(got.All(m => m.Child("delay", Ns.Delay)?.Attr("stamp") is { Length: > 0 }), "each carries an XEP-0203 delay");
        Assert.That(got.All(m => m.Attr("to") == "bob@localhost/phone"));
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(0), "delivered once, then gone");

        // A second login gets nothing again.
        await using var bob2 = await Online(server, "bob", "tablet");
        Assert.That(await bob2.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null);
    }

    [Test]
    public async Task After_logins_that_found_the_spool_empty_a_message_spooled_meanwhile_still_arrives_at_the_next()
    {
        // The server skips the spool query when it knows the account's spool is empty: the first login finds it empty,
        // the second is served from that knowledge, and the third must still see what was spooled in between.
        await using var server = await Server();
        for (var login = 0; login < 2; login++)
        {
            await using var bob = await Online(server, "bob", "phone");
            await Settle(bob);
            Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(200)), Is.Null);
        }
        await using (var alice = await Online(server, "alice", "pc"))
        {
            await alice.SendAsync("<message to='bob@localhost' type='chat' id='late'><body>while you were out</body></message>");
            await Settle(alice);
        }
        await using (var again = await Online(server, "bob", "phone"))
            Assert.That((await again.ReceiveAsync("message")).Attr("id"), Is.EqualTo("late"));
        // Exactly once: the next login has nothing.
        await using var last = await Online(server, "bob", "tablet");
        await Settle(last);
        Assert.That(await last.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null);
    }

    [Test]
    public async Task Offline_messages_wait_for_initial_presence_not_for_binding()
    {
        await using var server = await Server();
        await using (var alice = await Online(server, "alice", "pc"))
        {
            await alice.SendAsync("<message to='bob@localhost' type='chat' id='p1'><body>after presence</body></message>");
            await Settle(alice);
        }
        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "quiet");
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null);
        await bob.SendAsync("<presence/>");
        Assert.That((await bob.ReceiveAsync("message")).Attr("id"), Is.EqualTo("p1"));
    }

    [Test]
    public async Task Spooled_messages_come_before_ones_sent_while_the_spool_is_delivered()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        for (int i = 1; i <= 50; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='o{i}'><body>{i}</body></message>");
        await Settle(alice);
        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "phone");
        await bob.SendAsync("<presence/>");
        for (int i = 51; i <= 60; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='o{i}'><body>{i}</body></message>");
        var ids = new List<string?>();
        for (int i = 0; i < 60; i++) ids.Add((await bob.ReceiveAsync("message")).Attr("id"));
        Assert.That(ids, Is.EqualTo(Enumerable.Range(1, 60).Select(i => "o" + i)));
    }

    [Test]
    public async Task Chat_states_alone_are_not_spooled_and_no_store_is_refused()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='ns'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>");
        var error = await alice.ReceiveAsync(e => e.Attr("type") == "error");
        Assert.That(error.Attr("id"), Is.EqualTo("ns"));
        Assert.That(error.Child("error", Ns.Client)?.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(0));
    }

    [Test]
    public async Task A_full_spool_answers_with_a_clear_error()
    {
        await using var server = await Server(o => o["Xmpp:Offline:MaxMessagesPerAccount"] = "3");
        await using var alice = await Online(server, "alice", "pc");
        for (int i = 1; i <= 4; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='q{i}'><body>{i}</body></message>");
        var error = await alice.ReceiveAsync(e => e.Attr("type") == "error");
        Assert.That(error.Attr("id"), Is.EqualTo("q4"));
        Assert.That(error.Child("error", Ns.Client)?.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null);
        Assert.That(error.Child("error", Ns.Client)?.ChildText("text", Ns.StanzaErrors), Does.Contain("full"));
        await Settle(alice); // the answer to a later IQ confirms that what was spooled before it is stored
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(3));
    }

    [Test]
    public async Task A_sender_that_never_sent_presence_gets_every_full_spool_error_at_once()
    {
        // RFC 6121 §8.5.3.1 and RFC 6120 §10: the errors go to the sender's full JID whether or not it is available;
        // they must not wait for an initial presence that may never come.
        await using var server = await Server(o => o["Xmpp:Offline:MaxMessagesPerAccount"] = "5");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "bot");
        for (int i = 1; i <= 55; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='p{i}'><body>{i}</body></message>");
        var refused = new List<string?>();
        for (int i = 0; i < 50; i++)
        {
            var error = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error", TimeSpan.FromSeconds(5));
            Assert.That(error.Child("error", Ns.Client)?.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null);
            refused.Add(error.Attr("id"));
        }
        Assert.That(refused, Is.EqualTo(Enumerable.Range(6, 50).Select(i => "p" + i)));
        await Settle(alice);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(5));
    }

    [Test]
    public async Task The_spool_survives_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-restart-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var server = await TestServer.StartAsync(dir))
            {
                await server.AddUserAsync("alice", "alice-pw");
                await server.AddUserAsync("bob", "bob-pw");
                await using var alice = await Online(server, "alice", "pc");
                for (int i = 1; i <= 10; i++)
                    await alice.SendAsync($"<message to='bob@localhost' type='chat' id='r{i}'><body>{i}</body></message>");
                await Settle(alice);
            }
            await using (var server = await TestServer.StartAsync(dir))
            {
                await using var bob = await Online(server, "bob", "phone");
                var ids = new List<string?>();
                for (int i = 0; i < 10; i++) ids.Add((await bob.ReceiveAsync("message")).Attr("id"));
                Assert.That(ids, Is.EqualTo(Enumerable.Range(1, 10).Select(i => "r" + i)));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task Delivered_and_read_ticks_reach_a_sender_who_was_offline_too()
    {
        await using var server = await Server();
        // Alice sends to offline Bob with a receipt request and a markable, then goes offline herself.
        await using (var alice = await Online(server, "alice", "pc"))
        {
            await alice.SendAsync("<message to='bob@localhost' type='chat' id='tick-1'><body>Are you there?</body><request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/></message>");
            await Settle(alice);
        }
        // Bob comes online, gets it, acknowledges delivery and reading, and leaves.
        await using (var bob = await Online(server, "bob", "phone"))
        {
            var m = await bob.ReceiveAsync("message");
            Assert.That(m.Child("request", Ns.Receipts), Is.Not.Null);
            Assert.That(m.Child("markable", Ns.ChatMarkers), Is.Not.Null);
            await bob.SendAsync("<message to='alice@localhost' id='r-1'><received xmlns='urn:xmpp:receipts' id='tick-1'/></message>");
            await bob.SendAsync("<message to='alice@localhost' type='chat' id='d-1'><displayed xmlns='urn:xmpp:chat-markers:0' id='tick-1'/></message>");
            await Settle(bob);
        }
        // Alice comes back and sees both ticks, once each.
        await using var alice2 = await Online(server, "alice", "pc");
        var first = await alice2.ReceiveAsync("message");
        var second = await alice2.ReceiveAsync("message");
        Assert.That(first.Child("received", Ns.Receipts)?.Attr("id"), Is.EqualTo("tick-1"));
        Assert.That(second.Child("displayed", Ns.ChatMarkers)?.Attr("id"), Is.EqualTo("tick-1"));
        Assert.That(first.Attr("from"), Is.EqualTo("bob@localhost/phone"));
        Assert.That(await alice2.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null);
    }

    [Test]
    public async Task The_quota_counts_messages_still_being_written_and_frees_up_once_delivered()
    {
        await using var server = await Server(o => o["Xmpp:Offline:MaxMessagesPerAccount"] = "5");
        await using var alice = await Online(server, "alice", "pc");
        // Sent back to back with no round trip between them: the writes are still queued when the later ones arrive.
        for (int i = 1; i <= 8; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='f{i}'><body>{i}</body></message>");
        await Settle(alice);
        var errors = (await alice.DrainAsync(TimeSpan.FromMilliseconds(300))).Where(e => e.Attr("type") == "error").Select(e => e.Attr("id"));
        Assert.That(errors, Is.EqualTo(new[] { "f6", "f7", "f8" }));
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(5));

        await using (var bob = await Online(server, "bob", "phone"))
            for (int i = 1; i <= 5; i++) Assert.That((await bob.ReceiveAsync("message")).Attr("id"), Is.EqualTo("f" + i));
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Get(Jid.Parse("bob@localhost")).Count == 0), Is.True);
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='g1'><body>again</body></message>");
        await Settle(alice);
        Assert.That(await alice.TryReceiveAsync(e => e.Attr("type") == "error", TimeSpan.FromMilliseconds(300)), Is.Null,
            "the delivered messages no longer count against the quota");
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(1));
    }
}
