using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Links.S2s;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// XEP-0288 bidirectional links between two of our servers (Xmpp:S2s:Bidi on both): a link a.test opened to a peer
/// whose certificate proves b.test carries b.test's stanzas back, so one connection serves both directions; a peer
/// that cannot prove itself by certificate is not asked, and opens its own link.
[TestFixture, Category("S2s")]
public sealed class S2sBidiTests
{
    private static async Task<TestClient> Login(TestServer server, string user)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", "phone");
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private static async Task<(S2sPair Pair, TestClient Alice, TestClient Bob)> StartAsync(S2sCertificates certificates, int idleSecondsA = 600)
    {
        var pair = await S2sPair.StartAsync(certificates, (domain, o) =>
        {
            o["Xmpp:S2s:Bidi"] = "true";
            if (domain == "a.test") o["Xmpp:S2s:IdleTimeoutSeconds"] = idleSecondsA.ToString();
        });
        await pair.A.AddUserAsync("alice", "alice-secret");
        await pair.B.AddUserAsync("bob", "bob-secret");
        return (pair, await Login(pair.A, "alice"), await Login(pair.B, "bob"));
    }

    [Test]
    public async Task With_verified_certificates_the_answer_comes_back_on_the_same_link()
    {
        var (pair, alice, bob) = await StartAsync(S2sCertificates.FromTestCa);
        await using var _ = pair;
        await using var a = alice;
        await using var b = bob;
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='bi-1'><body>one link?</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "bi-1", TimeSpan.FromSeconds(20));
        await bob.SendAsync("<message to='alice@a.test' type='chat' id='bi-2'><body>one link.</body></message>");
        var answer = await alice.ReceiveAsync(e => e.Attr("id") == "bi-2", TimeSpan.FromSeconds(20));
        Assert.That(answer.ChildText("body", Ns.Client), Is.EqualTo("one link."));
        // An IQ both ways over it: a request from b.test and its answer from a.test.
        var pong = await bob.IqAsync("<iq to='a.test' type='get' id='bi-3'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"), pong.ToString());

        var linksB = S2sPair.Links(pair.B);
        var back = linksB.Single(l => l.Outbound && l.Remote == "a.test");
        Assert.That(back.Authentication, Does.Contain("XEP-0288"), string.Join("\n", linksB));
        Assert.That(S2sPair.Links(pair.A).Where(l => !l.Outbound), Is.Empty, "a.test never got a connection from b.test");
        Assert.That(S2sPair.Links(pair.A).Single(l => l.Outbound && l.Remote == "b.test").Authentication, Is.EqualTo("SASL EXTERNAL"));
    }

    [Test]
    public async Task When_the_link_closes_the_other_side_opens_its_own_for_the_next_stanza()
    {
        var (pair, alice, bob) = await StartAsync(S2sCertificates.FromTestCa, idleSecondsA: 2);
        await using var _ = pair;
        await using var a = alice;
        await using var b = bob;
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='bc-1'><body>hi</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "bc-1", TimeSpan.FromSeconds(20));
        Assert.That(await Wait.UntilAsync(() => S2sPair.Links(pair.B).Any(l => l.Outbound && l.Authentication?.Contains("XEP-0288") == true),
            TimeSpan.FromSeconds(5)), "b.test uses a.test's link");
        // a.test closes its idle link; b.test's direction of it ends with it.
        Assert.That(await Wait.UntilAsync(() => !S2sPair.Links(pair.B).Any(l => l.Outbound), TimeSpan.FromSeconds(15)),
            string.Join("\n", S2sPair.Links(pair.B)));
        await bob.SendAsync("<message to='alice@a.test' type='chat' id='bc-2'><body>still here</body></message>");
        await alice.ReceiveAsync(e => e.Attr("id") == "bc-2", TimeSpan.FromSeconds(20));
        var own = S2sPair.Links(pair.B).Single(l => l.Outbound && l.Remote == "a.test");
        Assert.That(own.Authentication, Is.EqualTo("SASL EXTERNAL"), "a link of b.test's own");
    }

    [Test]
    public async Task A_peer_whose_certificate_does_not_verify_is_not_asked_and_opens_its_own_link()
    {
        var (pair, alice, bob) = await StartAsync(S2sCertificates.SelfSigned);
        await using var _ = pair;
        await using var a = alice;
        await using var b = bob;
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='bs-1'><body>dialback</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "bs-1", TimeSpan.FromSeconds(20));
        await bob.SendAsync("<message to='alice@a.test' type='chat' id='bs-2'><body>my own link</body></message>");
        await alice.ReceiveAsync(e => e.Attr("id") == "bs-2", TimeSpan.FromSeconds(20));
        Assert.That(S2sPair.Links(pair.B).Single(l => l.Outbound && l.Remote == "a.test").Authentication, Is.EqualTo("dialback"));
        Assert.That(S2sPair.Links(pair.A).Any(l => !l.Outbound && l.Remote == "b.test"), Is.True, "b.test connected to a.test");
    }

    [Test]
    public async Task A_hand_driven_peer_that_asks_for_bidi_gets_our_stanzas_on_its_own_stream()
    {
        const string secret = "a.test secret for the bidi test";
        await using var pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            o["Xmpp:S2s:Bidi"] = "true";
            if (domain == "a.test") o["Xmpp:S2s:DialbackSecret"] = secret;
        });
        await pair.B.AddUserAsync("bob", "bob-secret");
        await using var bob = await Login(pair.B, "bob");
        await using var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(pair.B), "a.test", "b.test");
        Assert.That(raw.Features.Child("bidi", Ns.BidiFeature), Is.Not.Null, raw.Features.ToString());
        await raw.SendRawAsync("<bidi xmlns='urn:xmpp:bidi'/>");
        var key = new DialbackKeys(secret).Generate("b.test", "a.test", raw.StreamId);
        Assert.That(await raw.DialbackAsync("a.test", "b.test", key), Is.EqualTo("valid"));

        await bob.SendAsync("<message to='alice@a.test' type='chat' id='raw-bi'><body>down your stream</body></message>");
        Element? got = null;
        while (got is null)
        {
            var e = await raw.ReadElementAsync(TimeSpan.FromSeconds(10));
            if (e.Name == "message" && e.Attr("id") == "raw-bi") got = e;
        }
        Assert.That(got.Attr("from"), Does.StartWith("bob@b.test"));
        Assert.That(got.ChildText("body", Ns.Server) ?? got.ChildText("body", Ns.Client), Is.EqualTo("down your stream"));
        // <bidi/> after authentication is out of order (XEP-0288 §2.2).
        await raw.SendRawAsync("<bidi xmlns='urn:xmpp:bidi'/>");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
    }

    [Test]
    public async Task On_our_bidirectional_link_only_the_peer_domain_may_send()
    {
        // fake.test: a certificate from a CA a.test trusts, bidi and dialback offered; it then sends one stanza from
        // itself and one in another domain's name.
        var root = Path.Combine(Path.GetTempPath(), "xmpp-bidi-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        using var ca = TestCa.Create();
        File.WriteAllText(Path.Combine(root, "ca.pem"), ca.Certificate.ExportCertificatePem());
        ca.Issue("fake.test", Path.Combine(root, "certs"));
        using var peerCertificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(
            Path.Combine(root, "certs", "fake.test", "fullchain.pem"), Path.Combine(root, "certs", "fake.test", "privkey.pem"));
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var askedBidi = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var closedWith = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var peer = Task.Run(() => PlayPeerAsync(listener, peerCertificate, askedBidi, closedWith));
        try
        {
            await using var server = await TestServer.StartAsync(configure: o =>
            {
                o["Xmpp:Domains:0"] = "a.test";
                o["Xmpp:S2s:Enabled"] = "true";
                o["Xmpp:S2s:Bidi"] = "true";
                o["Xmpp:S2s:TrustedCaFile"] = Path.Combine(root, "ca.pem");
                o["Xmpp:S2s:Peers:fake.test"] = "127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port;
            });
            await server.AddUserAsync("alice", "alice-secret");
            await using var alice = await Login(server, "alice");
            await alice.SendAsync("<message to='someone@fake.test' type='chat' id='fk-1'><body>hello fake</body></message>");
            Assert.That(await askedBidi.Task.WaitAsync(TimeSpan.FromSeconds(15)), Is.True, "a.test asked for bidi");
            var fromPeer = await alice.ReceiveAsync(e => e.Attr("id") == "fk-ok", TimeSpan.FromSeconds(10));
            Assert.That(fromPeer.Attr("from"), Is.EqualTo("someone@fake.test/x"));
            Assert.That(await closedWith.Task.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("invalid-from"));
            Assert.That(await alice.TryReceiveAsync(e => e.Attr("id") == "fk-spoof", TimeSpan.FromMilliseconds(500)), Is.Null);
        }
        finally
        {
            listener.Stop();
            await Task.WhenAny(peer, Task.Delay(2000));
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task PlayPeerAsync(TcpListener listener, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate,
        TaskCompletionSource<bool> askedBidi, TaskCompletionSource<string?> closedWith)
    {
        try
        {
            using var socket = await listener.AcceptSocketAsync();
            await using var wire = S2sWire.Over(new NetworkStream(socket, ownsSocket: false), new ParserLimits());
            var ct = new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;
            await wire.ReadHeaderAsync(ct);
            await wire.WriteHeaderAsync("fake.test", "a.test", "fake-1", ct);
            await wire.WriteRawAsync("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>", ct);
            await wire.ReadElementAsync(ct);
            await wire.WriteRawAsync("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", ct);
            await wire.StartTlsAsServerAsync((_, _, _, _) => ValueTask.FromResult(new SslServerAuthenticationOptions { ServerCertificate = certificate }), ct);
            await wire.ReadHeaderAsync(ct);
            await wire.WriteHeaderAsync("fake.test", "a.test", "fake-2", ct);
            await wire.WriteRawAsync("<stream:features><bidi xmlns='urn:xmpp:features:bidi'/><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>", ct);
            var first = await wire.ReadElementAsync(ct);
            askedBidi.TrySetResult(first.Is("bidi", Ns.Bidi));
            var result = first.Is("bidi", Ns.Bidi) ? await wire.ReadElementAsync(ct) : first;
            Assert.That(result.Is("result", Ns.Dialback), result.ToString());
            await wire.WriteRawAsync("<db:result from='fake.test' to='a.test' type='valid'/>", ct);
            await wire.WriteRawAsync("<message from='someone@fake.test/x' to='alice@a.test' type='chat' id='fk-ok'><body>back on your link</body></message>", ct);
            await wire.WriteRawAsync("<message from='mallory@evil.test' to='alice@a.test' type='chat' id='fk-spoof'><body>trust me</body></message>", ct);
            while (true)
            {
                var (kind, item) = await wire.ReadAsync(ct);
                if (kind == XmlItemKind.StreamEnd) { closedWith.TrySetResult(null); return; }
                if (item is not null && item.Is("error", Ns.Streams))
                {
                    closedWith.TrySetResult(item.FirstElement?.Name);
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            askedBidi.TrySetException(ex);
            closedWith.TrySetException(ex);
        }
    }
}
