using Microsoft.Extensions.DependencyInjection;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// A message the router found no resource for, while its recipient was logging in: it must neither wait in the spool
/// for the next login nor arrive twice.
[TestFixture]
public sealed class OfflineDrainRaceTests
{
    /// Holds a chosen message between the router's "nobody available" and the offline spool, until the test lets go.
    private sealed class PauseBeforeSpool : IXmppModule
    {
        public readonly TaskCompletionSource Reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource Release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Register(IModuleBuilder module) =>
            module.Hook(HookPoint.Undeliverable, 60, async c =>
            {
                if (c.Stanza.Attr("id") != "late") return false;
                Reached.TrySetResult();
                await Release.Task;
                return false;
            });
    }

    private static async Task<TestServer> StartAsync(PauseBeforeSpool pause)
    {
        var server = await TestServer.StartAsync(services: s => s.AddSingleton<IXmppModule>(pause));
        await server.AddUserAsync("alice", "alice-pw");
        await server.AddUserAsync("bob", "bob-pw");
        return server;
    }

    private static async Task<TestClient> OnlineAsync(TestServer server, string user)
    {
        var client = await TestClient.ConnectAsync(server, user, user + "-pw", "pc");
        await client.SendAsync("<presence/>");
        return client;
    }

    [Test]
    public async Task A_message_spooled_after_the_recipients_drain_looked_is_delivered_to_that_session_once()
    {
        var pause = new PauseBeforeSpool();
        await using var server = await StartAsync(pause);
        await using var alice = await OnlineAsync(server, "alice");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='early'><body>spooled first</body></message>");
        await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

        // The router finds bob offline; the message stops just short of the spool.
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='late'><body>in the window</body></message>");
        await pause.Reached.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // Bob logs in; his drain reads the spool (and hands over "early") before "late" gets there.
        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "phone");
        await bob.SendAsync("<presence/>");
        Assert.That((await bob.ReceiveAsync("message")).Attr("id"), Is.EqualTo("early"));
        pause.Release.SetResult();

        Assert.That((await bob.ReceiveAsync("message")).Attr("id"), Is.EqualTo("late"), "delivered now, not at the next login");
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(500)), Is.Null, "and only once");
        await server.Get<IStorage>().FlushAsync();
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.Zero, "nothing left in the spool");
    }

    [Test]
    public async Task A_message_whose_recipient_is_still_offline_after_the_window_is_spooled()
    {
        var pause = new PauseBeforeSpool();
        await using var server = await StartAsync(pause);
        await using var alice = await OnlineAsync(server, "alice");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='late'><body>still offline</body></message>");
        await pause.Reached.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // Bob binds but sends no presence: not available, so the message is spooled and waits for his presence.
        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "phone");
        pause.Release.SetResult();
        await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await server.Get<IStorage>().FlushAsync();
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(1));
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null);

        await bob.SendAsync("<presence/>");
        Assert.That((await bob.ReceiveAsync("message")).Attr("id"), Is.EqualTo("late"));
    }
}
