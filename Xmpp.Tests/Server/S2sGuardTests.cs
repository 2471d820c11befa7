using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xmpp.Protocol;
using Xmpp.Server.Links.S2s;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// What a server link refuses, and what a user hears when another server cannot be reached (RFC 6120 §8.3.3,
/// §4.9.3). A hand-driven stream plays a peer that claims a.test, proving it with dialback against the real a.test
/// server, whose dialback secret the test knows.
[TestFixture, Category("S2s")]
public sealed class S2sGuardTests
{
    private const string SecretA = "a.test dialback secret for tests";
    private S2sPair _pair = null!;
    private TcpListener _silent = null!;
    private readonly List<Socket> _silentSockets = [];
    private int _closedPort;

    [OneTimeSetUp]
    public async Task Start()
    {
        _closedPort = TestServer.FreePort(); // nothing listens there
        _silent = new TcpListener(IPAddress.Loopback, 0);
        _silent.Start();
        _ = Task.Run(AcceptSilentlyAsync);
        int silentPort = ((IPEndPoint)_silent.LocalEndpoint).Port;
        _pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            if (domain == "a.test")
            {
                o["Xmpp:S2s:DialbackSecret"] = SecretA;
                o["Xmpp:S2s:Peers:nowhere.test"] = "127.0.0.1:" + _closedPort;
                o["Xmpp:S2s:Peers:silent.test"] = "127.0.0.1:" + silentPort;
                o["Xmpp:S2s:SetupTimeoutSeconds"] = "3";
            }
            else
            {
                o["Xmpp:S2s:BlockedDomains:0"] = "blocked.test";
            }
        });
        await _pair.A.AddUserAsync("alice", "alice-secret");
        await _pair.B.AddUserAsync("bob", "bob-secret");
    }

    private async Task AcceptSilentlyAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _silent.AcceptSocketAsync();
                lock (_silentSockets) _silentSockets.Add(socket);
            }
        }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _silent.Stop();
        lock (_silentSockets) foreach (var s in _silentSockets) s.Dispose();
        await _pair.DisposeAsync();
    }

    /// Logged in and available: messages reach a session only after its initial presence (offline drain).
    private static async Task<TestClient> Login(TestServer server, string user)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", "phone");
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    /// A raw stream to b.test claiming a.test, proven with a dialback key b.test checks with the real a.test.
    private async Task<RawS2sClient> AuthenticatedAsAsync(string from = "a.test")
    {
        var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), from, "b.test");
        var key = new DialbackKeys(SecretA).Generate("b.test", from, raw.StreamId);
        Assert.That(await raw.DialbackAsync(from, "b.test", key), Is.EqualTo("valid"));
        return raw;
    }

    [Test]
    public async Task A_message_to_a_domain_where_nothing_listens_comes_back_as_remote_server_not_found_with_its_id()
    {
        await using var alice = await Login(_pair.A, "alice");
        var clock = Stopwatch.StartNew();
        await alice.SendAsync("<message to='someone@nowhere.test' type='chat' id='lost-1'><body>anyone?</body></message>");
        await alice.SendAsync("<iq to='nowhere.test' type='get' id='lost-2'><ping xmlns='urn:xmpp:ping'/></iq>");
        var message = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "lost-1", TimeSpan.FromSeconds(15));
        var iq = await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "lost-2", TimeSpan.FromSeconds(15));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(X.Matches(message, X.Parse(
            "<message type='error' from='someone@nowhere.test' id='lost-1'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")),
            message.ToString());
        Assert.That(X.Matches(iq, X.Parse(
            "<iq type='error' from='nowhere.test' id='lost-2'><error><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")),
            iq.ToString());
    }

    [Test]
    public async Task A_message_to_a_server_that_never_answers_comes_back_as_remote_server_timeout()
    {
        await using var alice = await Login(_pair.A, "alice");
        var clock = Stopwatch.StartNew();
        await alice.SendAsync("<message to='someone@silent.test' type='chat' id='slow-1'><body>hello?</body></message>");
        var error = await alice.ReceiveAsync(e => e.Attr("id") == "slow-1", TimeSpan.FromSeconds(15));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(X.Matches(error, X.Parse(
            "<message type='error' from='someone@silent.test'><error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")),
            error.ToString());
    }

    [Test]
    public async Task A_stanza_from_the_proven_domain_is_delivered()
    {
        await using var bob = await Login(_pair.B, "bob");
        await using var raw = await AuthenticatedAsAsync();
        await raw.SendRawAsync("<message from='alice@a.test/x' to='bob@b.test' type='chat' id='raw-1'><body>by hand</body></message>");
        var got = await bob.ReceiveAsync(e => e.Attr("id") == "raw-1", TimeSpan.FromSeconds(10));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("by hand"));
        Assert.That(got.Attr("from"), Is.EqualTo("alice@a.test/x"));
    }

    [Test]
    public async Task A_stanza_from_a_domain_the_link_did_not_prove_ends_the_stream_with_invalid_from()
    {
        await using var bob = await Login(_pair.B, "bob");
        await using var raw = await AuthenticatedAsAsync();
        await raw.SendRawAsync("<message from='mallory@evil.test' to='bob@b.test' type='chat' id='spoof-1'><body>trust me</body></message>");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("invalid-from"));
        Assert.That(await bob.TryReceiveAsync(e => e.Attr("id") == "spoof-1", TimeSpan.FromMilliseconds(500)), Is.Null);
    }

    [Test]
    public async Task A_stanza_to_a_domain_this_server_does_not_serve_ends_the_stream_with_host_unknown()
    {
        await using var raw = await AuthenticatedAsAsync();
        await raw.SendRawAsync("<message from='alice@a.test' to='someone@c.test' type='chat'><body>relay this</body></message>");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("host-unknown"));
    }

    [Test]
    public async Task A_stream_to_a_domain_this_server_does_not_serve_is_refused_with_host_unknown()
    {
        await using var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), "a.test", "c.test");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("host-unknown"));
    }

    [Test]
    public async Task A_stanza_without_a_from_ends_the_stream_with_improper_addressing()
    {
        await using var raw = await AuthenticatedAsAsync();
        await raw.SendRawAsync("<message to='bob@b.test' type='chat'><body>who am I</body></message>");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("improper-addressing"));
    }

    [Test]
    public async Task A_stanza_before_authentication_ends_the_stream_with_not_authorized()
    {
        await using var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), "a.test", "b.test");
        await raw.SendRawAsync("<message from='alice@a.test' to='bob@b.test' type='chat'><body>early</body></message>");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
    }

    [Test]
    public async Task A_dialback_key_the_claimed_domain_did_not_make_is_invalid()
    {
        await using var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), "a.test", "b.test");
        var forged = new DialbackKeys("some other secret").Generate("b.test", "a.test", raw.StreamId);
        Assert.That(await raw.DialbackAsync("a.test", "b.test", forged), Is.EqualTo("invalid"));
        await raw.SendRawAsync("<message from='alice@a.test' to='bob@b.test' type='chat'><body>still?</body></message>");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("not-authorized"));
    }

    [Test]
    public async Task A_stream_without_TLS_cannot_authenticate()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", S2sPair.S2sPort(_pair.B));
        // A peer that ignores the required STARTTLS and goes straight to dialback is cut off.
        var plain = tcp.GetStream();
        await plain.WriteAsync(System.Text.Encoding.UTF8.GetBytes(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='a.test' to='b.test' version='1.0'><db:result from='a.test' to='b.test'>abc</db:result>"));
        var buffer = new byte[8192];
        var text = "";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!text.Contains("</stream:stream>"))
        {
            int n = await plain.ReadAsync(buffer, cts.Token);
            if (n == 0) break;
            text += System.Text.Encoding.UTF8.GetString(buffer, 0, n);
        }
        Assert.That(text, Does.Contain("<starttls").And.Contain("<required"));
        Assert.That(text, Does.Contain("policy-violation"));
    }

    [Test]
    public async Task A_blocked_domain_is_refused_in_both_directions()
    {
        await using var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), "blocked.test", "b.test");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));

        await using var bob = await Login(_pair.B, "bob");
        await bob.SendAsync("<message to='someone@blocked.test' type='chat' id='blocked-1'><body>hi</body></message>");
        var error = await bob.ReceiveAsync(e => e.Attr("id") == "blocked-1", TimeSpan.FromSeconds(10));
        Assert.That(X.Matches(error, X.Parse(
            "<message type='error'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")), error.ToString());
    }

    [Test]
    public async Task A_local_user_who_blocked_a_remote_sender_gets_nothing_from_them_and_the_sender_hears_service_unavailable()
    {
        await using var bob = await Login(_pair.B, "bob");
        await using var alice = await Login(_pair.A, "alice");
        var blocked = await bob.IqAsync("<iq type='set' id='blk-1'><block xmlns='urn:xmpp:blocking'><item jid='alice@a.test'/></block></iq>");
        Assert.That(blocked.Attr("type"), Is.EqualTo("result"), blocked.ToString());
        try
        {
            await alice.SendAsync("<message to='bob@b.test' type='chat' id='blk-m'><body>let me in</body></message>");
            var error = await alice.ReceiveAsync(e => e.Attr("id") == "blk-m", TimeSpan.FromSeconds(20));
            Assert.That(error.Child("error", Ns.Client)?.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null, error.ToString());
            Assert.That(await bob.TryReceiveAsync(e => e.Attr("id") == "blk-m", TimeSpan.FromMilliseconds(300)), Is.Null);
        }
        finally
        {
            await bob.IqAsync("<iq type='set' id='blk-2'><unblock xmlns='urn:xmpp:blocking'><item jid='alice@a.test'/></unblock></iq>");
        }
    }

    [Test]
    public async Task An_archive_id_another_server_claims_in_our_name_is_removed()
    {
        await using var bob = await Login(_pair.B, "bob");
        await using var raw = await AuthenticatedAsAsync();
        await raw.SendRawAsync("<message from='alice@a.test/x' to='bob@b.test' type='chat' id='sid-1'><body>archived?</body>"
            + "<stanza-id xmlns='urn:xmpp:sid:0' by='bob@b.test' id='forged-id'/></message>");
        var got = await bob.ReceiveAsync(e => e.Attr("id") == "sid-1", TimeSpan.FromSeconds(10));
        var ids = got.Elements("stanza-id", Ns.StanzaId).Where(e => e.Attr("by") == "bob@b.test").Select(e => e.Attr("id")).ToList();
        Assert.That(ids, Has.Count.EqualTo(1), got.ToString());
        Assert.That(ids[0], Is.Not.EqualTo("forged-id"));
    }
}
