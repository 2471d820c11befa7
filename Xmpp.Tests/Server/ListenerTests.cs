using System.Net.Sockets;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Listeners: IPv6, SNI per served domain, and a client that stops reading.
[TestFixture]
public sealed class ListenerTests
{
    [Test]
    public async Task Clients_connect_over_ipv6()
    {
        if (!Socket.OSSupportsIPv6) Assert.Ignore("this machine has no IPv6 stack");
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:ListenAddresses:0"] = "::1");
        await server.AddUserAsync("alice", "alice-pw");
        var endpoint = new ServerEndpoint("::1", server.C2sPort, server.C2sTlsPort);
        await using var c = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "v6");
        Assert.That(c.Jid!.ToString(), Is.EqualTo("alice@localhost/v6"));
        await using var direct = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "v6tls", TlsMode.Direct);
        Assert.That(direct.Tls!.IsAuthenticated, Is.True);
    }

    [Test]
    public async Task Each_served_domain_gets_its_own_certificate_and_stream()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "localhost";
            o["Xmpp:Domains:1"] = "chat.example";
        });
        await server.AddUserAsync("alice", "alice-pw");
        var other = new ServerEndpoint(server.Host, server.C2sPort, server.C2sTlsPort, "chat.example");
        await using var c = await TestClient.OpenAsync(other, TlsMode.Direct);
        Assert.That(c.Tls!.RemoteCertificate!.Subject, Does.Contain("chat.example"));
        Assert.That(c.ServerHeader!.Attr("from"), Is.EqualTo("chat.example"));
        await using var d = await TestClient.OpenAsync(server, TlsMode.Direct);
        Assert.That(d.Tls!.RemoteCertificate!.Subject, Does.Contain("localhost"));
    }

    [Test]
    public async Task A_client_that_never_reads_is_disconnected_and_unsent_messages_are_spooled()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Limits:MaxSendQueue"] = "100";
            // Alice sends ~10 MB to fill Bob's socket buffers; the read-rate guard would spread that over a minute.
            o["Xmpp:Limits:ReadBytesPerSecond"] = "100000000";
            o["Xmpp:Limits:ReadBurstBytes"] = "100000000";
            // 600 messages at once, past the account's message burst (docs/security.md).
            o["Xmpp:RateLimits:MessagesPerSecond"] = "0";
        });
        await server.AddUserAsync("alice", "alice-pw");
        await server.AddUserAsync("bob", "bob-pw");
        await server.AddUserAsync("carol", "carol-pw");
        await using var carol = await TestClient.ConnectAsync(server, "carol", "carol-pw", "desk");
        // Bob logs in, says he is available, and then never reads again.
        var bob = await TestClient.OpenAsync(server);
        await bob.AuthenticateAsync("bob", "bob-pw");
        await bob.BindAsync("stuck");
        await bob.SendRawAsync("<presence/>");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var body = new string('x', 16 * 1024);
        for (int i = 0; i < 600; i++)
            await alice.SendAsync(new Element("message", Ns.Client).SetAttr("to", "bob@localhost/stuck").SetAttr("type", "chat")
                .SetAttr("id", "q" + i).Add(new Element("body", Ns.Client).SetText(body)));
        var directory = server.Get<Xmpp.Server.Sessions.ISessionDirectory>();
        Assert.That(await Wait.UntilAsync(() => directory.Find(Jid.Parse("bob@localhost/stuck")) is null, TimeSpan.FromSeconds(20)),
            "the server let go of the client that does not read");
        // Alice's own stream may still be waiting for storage (~10 MB spooled and archived); others are not held up.
        var pong = await carol.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"), "the server keeps serving everyone else");
        var spool = server.Get<Xmpp.Storage.IStorage>().Archive("offline");
        Assert.That(await Wait.UntilAsync(async () => await spool.CountAsync("bob") > 0, TimeSpan.FromSeconds(60)),
            "what never reached the wire went to the offline spool");
        await bob.DisposeAsync();
    }
}
