using System.Net;
using System.Net.Sockets;
using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Certificate policy and the direct TLS port (XEP-0368) between two of our servers.
[TestFixture, Category("S2s")]
public sealed class S2sPolicyTests
{
    private static async Task<TestClient> Login(TestServer server, string user)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", "phone");
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    [Test]
    public async Task A_server_that_requires_verified_certificates_does_not_fall_back_to_dialback()
    {
        await using var pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            if (domain == "a.test") o["Xmpp:S2s:RequireVerifiedCertificates:0"] = "*";
        });
        await pair.A.AddUserAsync("alice", "alice-secret");
        await using var alice = await Login(pair.A, "alice");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='v1'><body>only if you can prove it</body></message>");
        var error = await alice.ReceiveAsync(e => e.Attr("id") == "v1", TimeSpan.FromSeconds(20));
        Assert.That(error.Attr("type"), Is.EqualTo("error"));
        Assert.That(error.Child("error", Ns.Client)?.Child("remote-server-not-found", Ns.StanzaErrors), Is.Not.Null, error.ToString());
        Assert.That(error.Child("error", Ns.Client)?.ChildText("text", Ns.StanzaErrors), Does.Contain("self-signed"),
            "the reason says why the certificate was not accepted");
    }

    [Test]
    public async Task A_peer_reached_on_its_direct_TLS_port_carries_stanzas()
    {
        int directB = TestServer.FreePort();
        await using var pair = await S2sPair.StartAsync(S2sCertificates.FromTestCa, (domain, o) =>
        {
            if (domain == "a.test") o["Xmpp:S2s:Peers:b.test"] = "tls://127.0.0.1:" + directB;
            else o["Xmpp:S2s:DirectTlsPort"] = directB.ToString();
        });
        await pair.A.AddUserAsync("alice", "alice-secret");
        await pair.B.AddUserAsync("bob", "bob-secret");
        await using var alice = await Login(pair.A, "alice");
        await using var bob = await Login(pair.B, "bob");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='d1'><body>straight into TLS</body></message>");
        var got = await bob.ReceiveAsync(e => e.Attr("id") == "d1", TimeSpan.FromSeconds(20));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("straight into TLS"));
        var link = S2sPair.Links(pair.A).Single(l => l.Outbound && l.Remote == "b.test");
        Assert.That(link.Peer, Does.Contain("direct TLS"));
        Assert.That(link.Authentication, Is.EqualTo("SASL EXTERNAL"));
    }

    [Test]
    public async Task Stanzas_beyond_the_queue_bound_of_a_link_being_set_up_get_resource_constraint_and_the_rest_a_timeout()
    {
        // silent.test accepts TCP and never says a word, so its link stays in setup until the setup timeout.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = new List<Socket>();
        _ = Task.Run(async () =>
        {
            try { while (true) { var s = await silent.AcceptSocketAsync(); lock (accepted) accepted.Add(s); } }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        });
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "a.test";
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Peers:silent.test"] = "127.0.0.1:" + ((IPEndPoint)silent.LocalEndpoint).Port;
            o["Xmpp:S2s:MaxQueuedStanzas"] = "2";
            o["Xmpp:S2s:SetupTimeoutSeconds"] = "2";
        });
        await server.AddUserAsync("alice", "alice-secret");
        await using var alice = await Login(server, "alice");
        for (int i = 1; i <= 3; i++)
            await alice.SendAsync($"<message to='someone@silent.test' type='chat' id='q{i}'><body>{i}</body></message>");
        var third = await alice.ReceiveAsync(e => e.Attr("id") == "q3", TimeSpan.FromSeconds(1));
        Assert.That(third.Child("error", Ns.Client)?.Child("resource-constraint", Ns.StanzaErrors), Is.Not.Null, third.ToString());
        foreach (var id in new[] { "q1", "q2" })
        {
            var waited = await alice.ReceiveAsync(e => e.Attr("id") == id, TimeSpan.FromSeconds(10));
            Assert.That(waited.Child("error", Ns.Client)?.Child("remote-server-timeout", Ns.StanzaErrors), Is.Not.Null, waited.ToString());
        }
        silent.Stop();
        lock (accepted) foreach (var s in accepted) s.Dispose();
    }
}
