using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Links.S2s;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Links close when idle and reopen on demand; quiet links are pinged (XEP-0199).
[TestFixture, Category("S2s")]
public sealed class S2sLinkLifetimeTests
{
    private static async Task<TestClient> Login(TestServer server, string user)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", "phone");
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private static bool HasOutbound(TestServer server, string remote) =>
        S2sPair.Links(server).Any(l => l.Outbound && l.Remote == remote && l.State == "Established");

    private static bool HasInbound(TestServer server, string remote) =>
        S2sPair.Links(server).Any(l => !l.Outbound && l.Remote == remote);

    /// a.test and b.test, whose links close after a second without stanzas (no pings), with alice logged in on a.test
    /// and bob on b.test, and a.test's link to b.test open.
    private sealed record IdleClosingPair(S2sPair Pair, TestClient Alice, TestClient Bob) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Alice.DisposeAsync();
            await Bob.DisposeAsync();
            await Pair.DisposeAsync();
        }
    }

    private static async Task<IdleClosingPair> IdleClosingPairAsync()
    {
        var pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (_, o) =>
        {
            o["Xmpp:S2s:IdleTimeoutSeconds"] = "1";
            o["Xmpp:S2s:PingIntervalSeconds"] = "0";
        });
        await pair.A.AddUserAsync("alice", "alice-secret");
        await pair.B.AddUserAsync("bob", "bob-secret");
        var users = new IdleClosingPair(pair, await Login(pair.A, "alice"), await Login(pair.B, "bob"));
        // One message from alice to bob opens the link.
        await users.Alice.SendAsync("<message to='bob@b.test' type='chat' id='i1'><body>one</body></message>");
        await users.Bob.ReceiveAsync(e => e.Attr("id") == "i1", TimeSpan.FromSeconds(20));
        return users;
    }

    private static T PrivateField<T>(object owner, string name) =>
        (T)owner.GetType().GetField(name, System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(owner)!;

    [Test]
    public async Task Aborting_a_link_that_has_already_ended_does_nothing()
    {
        // The server's stop aborts every outbound link it lists; a link can end between that listing and its Abort.
        // Seen in a benchmark run: xmppd's stop failed with ObjectDisposedException from OutboundLink.Abort.
        await using var users = await IdleClosingPairAsync();

        var outbound = PrivateField<System.Collections.IDictionary>(users.Pair.A.Get<S2sLinkManager>(), "_outbound");
        var link = outbound.Values.Cast<OutboundLink>().Single(l => l.Remote == "b.test");
        // Its run's finally block disposes the link's token source last: wait for that (Token throws once disposed).
        var cts = PrivateField<CancellationTokenSource>(link, "_cts");
        bool Disposed()
        {
            try { _ = cts.Token; return false; }
            catch (ObjectDisposedException) { return true; }
        }
        Assert.That(await Wait.UntilAsync(() => link.State == S2sLinkState.Closed && Disposed(), TimeSpan.FromSeconds(10)),
            "the idle link ended");

        Assert.DoesNotThrow(() => link.Abort("the server is stopping"));
        Assert.That(link.State, Is.EqualTo(S2sLinkState.Closed));
    }

    [Test]
    public async Task An_idle_link_closes_and_the_next_stanza_opens_a_new_one()
    {
        await using var users = await IdleClosingPairAsync();
        var (pair, alice, bob) = (users.Pair, users.Alice, users.Bob);

        Assert.That(HasOutbound(pair.A, "b.test"), Is.True);
        Assert.That(HasInbound(pair.B, "a.test"), Is.True);

        // After a second without stanzas a.test closes its link, and b.test sees that stream end.
        Assert.That(await Wait.UntilAsync(() => !S2sPair.Links(pair.A).Any(l => l.Outbound && l.Remote == "b.test"), TimeSpan.FromSeconds(10)),
            "the idle outbound link was closed");
        Assert.That(await Wait.UntilAsync(() => !HasInbound(pair.B, "a.test"), TimeSpan.FromSeconds(10)), "b.test saw the stream end");

        await alice.SendAsync("<message to='bob@b.test' type='chat' id='i2'><body>two</body></message>");
        var second = await bob.ReceiveAsync(e => e.Attr("id") == "i2", TimeSpan.FromSeconds(20));
        Assert.That(second.ChildText("body", Ns.Client), Is.EqualTo("two"));
        Assert.That(await Wait.UntilAsync(() => HasInbound(pair.B, "a.test"), TimeSpan.FromSeconds(5)), "a new link carried it");
    }

    [Test]
    public async Task A_quiet_link_is_pinged_and_stays_up_while_the_peer_answers()
    {
        await using var pair = await S2sPair.StartAsync(S2sCertificates.FromTestCa, (_, o) =>
        {
            o["Xmpp:S2s:IdleTimeoutSeconds"] = "60";
            o["Xmpp:S2s:PingIntervalSeconds"] = "1";
            o["Xmpp:S2s:PingTimeoutSeconds"] = "2";
        });
        await pair.A.AddUserAsync("alice", "alice-secret");
        await pair.B.AddUserAsync("bob", "bob-secret");
        await using var alice = await Login(pair.A, "alice");
        await using var bob = await Login(pair.B, "bob");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='p1'><body>hi</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "p1", TimeSpan.FromSeconds(20));

        // b.test answers a.test's ping over its own link back (a server stream carries stanzas one way), which it opens
        // for the purpose; a.test's link survives several ping timeouts.
        Assert.That(await Wait.UntilAsync(() => HasOutbound(pair.B, "a.test"), TimeSpan.FromSeconds(10)), "the pong came over b.test's own link");
        await Task.Delay(TimeSpan.FromSeconds(5));
        Assert.That(HasOutbound(pair.A, "b.test"), Is.True, "answered pings keep the link");
    }

    [Test]
    public async Task A_link_whose_peer_stops_answering_pings_is_closed()
    {
        // dead.test: a peer that negotiates (STARTTLS, accepts our dialback) and then reads without ever answering.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var sawPing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var peer = Task.Run(() => PlayDeadPeerAsync(listener, sawPing));
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "a.test";
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Peers:dead.test"] = "127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port;
            o["Xmpp:S2s:PingIntervalSeconds"] = "1";
            o["Xmpp:S2s:PingTimeoutSeconds"] = "1";
        });
        await server.AddUserAsync("alice", "alice-secret");
        await using var alice = await Login(server, "alice");
        await alice.SendAsync("<message to='zombie@dead.test' type='chat' id='d1'><body>still there?</body></message>");
        Assert.That(await Wait.UntilAsync(() => HasOutbound(server, "dead.test"), TimeSpan.FromSeconds(10)), "the link came up");
        await sawPing.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(await Wait.UntilAsync(() => !S2sPair.Links(server).Any(l => l.Outbound && l.Remote == "dead.test"), TimeSpan.FromSeconds(10)),
            "the link was closed for want of a pong");
        listener.Stop();
        await Task.WhenAny(peer, Task.Delay(2000));
    }

    [Test]
    public async Task After_a_dead_link_is_closed_the_next_stanza_opens_a_new_one_and_hears_if_that_fails()
    {
        // dead.test plays dead on its first connection; by the second it has gone away (accepts and hangs up).
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var sawPing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondConnection = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var peer = Task.Run(async () =>
        {
            await PlayDeadPeerAsync(listener, sawPing);
            using var again = await listener.AcceptSocketAsync();
            secondConnection.TrySetResult();
        });
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "a.test";
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Peers:dead.test"] = "127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port;
            o["Xmpp:S2s:PingIntervalSeconds"] = "1";
            o["Xmpp:S2s:PingTimeoutSeconds"] = "1";
        });
        await server.AddUserAsync("alice", "alice-secret");
        await using var alice = await Login(server, "alice");
        await alice.SendAsync("<message to='zombie@dead.test' type='chat' id='r1'><body>still there?</body></message>");
        await sawPing.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(await Wait.UntilAsync(() => !S2sPair.Links(server).Any(l => l.Outbound && l.Remote == "dead.test"), TimeSpan.FromSeconds(10)),
            "the link was closed for want of a pong");

        await alice.SendAsync("<message to='zombie@dead.test' type='chat' id='r2'><body>and now?</body></message>");
        await secondConnection.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // RFC 6120 §8.3.3.16: the new link could not be set up, so the sender hears it instead of losing the message.
        var error = await alice.ReceiveAsync(e => e.Attr("id") == "r2", TimeSpan.FromSeconds(10));
        Assert.That(error.Child("error", Ns.Client)?.Child("remote-server-not-found", Ns.StanzaErrors), Is.Not.Null, error.ToString());
        listener.Stop();
        await Task.WhenAny(peer, Task.Delay(2000));
    }

    private static async Task PlayDeadPeerAsync(TcpListener listener, TaskCompletionSource sawPing)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var certificate = new CertificateRequest("CN=dead.test", key, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var socket = await listener.AcceptSocketAsync();
        await using var wire = S2sWire.Over(new NetworkStream(socket, ownsSocket: false), new ParserLimits());
        var ct = new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;
        await wire.ReadHeaderAsync(ct);
        await wire.WriteHeaderAsync("dead.test", "a.test", "dead-1", ct);
        await wire.WriteRawAsync("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>", ct);
        await wire.ReadElementAsync(ct);
        await wire.WriteRawAsync("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", ct);
        await wire.StartTlsAsServerAsync((_, _, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions { ServerCertificate = certificate }), ct);
        await wire.ReadHeaderAsync(ct);
        await wire.WriteHeaderAsync("dead.test", "a.test", "dead-2", ct);
        await wire.WriteRawAsync("<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>", ct);
        var result = await wire.ReadElementAsync(ct);
        Assert.That(result.Is("result", Ns.Dialback));
        await wire.WriteRawAsync("<db:result from='dead.test' to='a.test' type='valid'/>", ct);
        try
        {
            while (true)
            {
                var (kind, item) = await wire.ReadAsync(ct);
                if (kind == XmlItemKind.StreamEnd) return;
                if (item?.Name == "iq" && item.Child("ping", Ns.Ping) is not null) sawPing.TrySetResult();
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException) { }
    }
}
