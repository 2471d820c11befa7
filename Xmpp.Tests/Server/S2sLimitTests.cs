using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Server.Links.S2s;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Limits on server links, as client streams have them: stanza size, read rate, links per remote domain, connections
/// per address, the time to authenticate; the allow-list mode for private federations. b.test only federates with
/// a.test; a hand-driven stream proves a.test with dialback against the real a.test, whose secret the test knows.
[TestFixture, Category("S2s")]
public sealed class S2sLimitTests
{
    private const string SecretA = "a.test dialback secret for limit tests";
    private const int Rate = 20_000;
    private S2sPair _pair = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            if (domain == "a.test")
            {
                o["Xmpp:S2s:DialbackSecret"] = SecretA;
                return;
            }
            o["Xmpp:S2s:MaxStanzaBytes"] = "10000";
            o["Xmpp:S2s:ReadBytesPerSecond"] = Rate.ToString();
            o["Xmpp:S2s:ReadBurstBytes"] = Rate.ToString();
            o["Xmpp:S2s:MaxLinksPerDomain"] = "2";
            o["Xmpp:S2s:AllowListOnly"] = "true";
            o["Xmpp:S2s:AllowedDomains:0"] = "a.test";
        });
        await _pair.B.AddUserAsync("bob", "bob-secret");
        await _pair.A.AddUserAsync("alice", "alice-secret");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _pair.DisposeAsync();

    private static async Task<TestClient> Login(TestServer server, string user)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", "phone");
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private async Task<RawS2sClient> AuthenticatedAsync()
    {
        var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), "a.test", "b.test");
        var key = new DialbackKeys(SecretA).Generate("b.test", "a.test", raw.StreamId);
        Assert.That(await raw.DialbackAsync("a.test", "b.test", key), Is.EqualTo("valid"));
        return raw;
    }

    [Test]
    public async Task A_stanza_above_the_server_link_size_limit_ends_the_stream_with_policy_violation()
    {
        await using var raw = await AuthenticatedAsync();
        var body = new string('x', 12_000);
        await raw.SendRawAsync($"<message from='alice@a.test/x' to='bob@b.test' type='chat'><body>{body}</body></message>");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
    }

    [Test]
    public async Task A_peer_above_the_read_rate_is_slowed_down_and_everything_arrives()
    {
        await using var bob = await Login(_pair.B, "bob");
        await using var raw = await AuthenticatedAsync();
        // 12 stanzas of about 5 KB: 60 KB at 20 KB/s with a 20 KB burst take at least 2 s to be read.
        var clock = Stopwatch.StartNew();
        var payload = new string('r', 5000);
        var all = new StringBuilder();
        for (int i = 0; i < 12; i++)
            all.Append($"<message from='alice@a.test/x' to='bob@b.test' type='chat' id='rate-{i}'><body>{payload}</body></message>");
        await raw.SendRawAsync(all.ToString());
        for (int i = 0; i < 12; i++)
            await bob.ReceiveAsync(e => e.Attr("id") == $"rate-{i}", TimeSpan.FromSeconds(20));
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(1.5)), "the reads were throttled");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public async Task A_domain_beyond_its_number_of_links_is_refused_with_policy_violation()
    {
        await using var first = await AuthenticatedAsync();
        await using var second = await AuthenticatedAsync();
        await using var third = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), "a.test", "b.test");
        Assert.That(await third.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
        // A stream that merely claims the domain took no slot: once one real link ends, another may come.
        await first.DisposeAsync();
        Assert.That(await Wait.UntilAsync(() => S2sPair.Links(_pair.B).Count(l => !l.Outbound && l.Remote == "a.test" && l.Authentication is not null) < 2,
            TimeSpan.FromSeconds(5)));
        await using var again = await AuthenticatedAsync();
    }

    [Test]
    public async Task In_allow_list_mode_other_domains_are_refused_both_ways()
    {
        await using var raw = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(_pair.B), "stranger.test", "b.test");
        Assert.That(await raw.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));

        await using var bob = await Login(_pair.B, "bob");
        await bob.SendAsync("<message to='someone@stranger.test' type='chat' id='al-1'><body>hi</body></message>");
        var error = await bob.ReceiveAsync(e => e.Attr("id") == "al-1", TimeSpan.FromSeconds(10));
        Assert.That(X.Matches(error, X.Parse(
            "<message type='error' from='someone@stranger.test'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")),
            error.ToString());

        // The allowed domain still works, both ways.
        await using var alice = await Login(_pair.A, "alice");
        await bob.SendAsync("<message to='alice@a.test' type='chat' id='al-2'><body>you are on the list</body></message>");
        await alice.ReceiveAsync(e => e.Attr("id") == "al-2", TimeSpan.FromSeconds(20));
    }

    [Test]
    public async Task Connections_beyond_the_limit_per_address_are_refused_at_once()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "b.test";
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Port"] = TestServer.FreePort().ToString();
            o["Xmpp:S2s:MaxConnectionsPerIp"] = "3";
        });
        int port = S2sPair.S2sPort(server);
        var idle = new List<TcpClient>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var c = new TcpClient();
                await c.ConnectAsync("127.0.0.1", port);
                idle.Add(c);
            }
            Assert.That(await Wait.UntilAsync(() => S2sPair.Links(server).Count >= 3, TimeSpan.FromSeconds(5)));
            await using (var fourth = await RawS2sClient.ConnectAsync(port, "a.test", "b.test"))
                Assert.That(await fourth.ReadStreamErrorAsync(), Is.EqualTo("policy-violation"));
            // One goes away: the address may connect again.
            idle[0].Dispose();
            idle.RemoveAt(0);
            Assert.That(await Wait.UntilAsync(() => S2sPair.Links(server).Count < 3, TimeSpan.FromSeconds(5)));
            await using var fifth = await RawS2sClient.ConnectAsync(port, "a.test", "b.test");
            Assert.That(fifth.Features.Name, Is.EqualTo("features"), fifth.Features.ToString());
        }
        finally
        {
            foreach (var c in idle) c.Dispose();
        }
    }

    [Test]
    public async Task A_connection_that_never_authenticates_is_closed_with_connection_timeout()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "b.test";
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Port"] = TestServer.FreePort().ToString();
            o["Xmpp:S2s:SetupTimeoutSeconds"] = "2";
        });
        // Slowloris: one connection says nothing at all, another negotiates TLS and then never authenticates.
        using var silent = new TcpClient();
        await silent.ConnectAsync("127.0.0.1", S2sPair.S2sPort(server));
        await using var stalled = await RawS2sClient.ConnectAsync(S2sPair.S2sPort(server), "a.test", "b.test");
        var clock = Stopwatch.StartNew();
        Assert.That(await stalled.ReadStreamErrorAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("connection-timeout"));
        var text = await ReadToEndAsync(silent.GetStream(), TimeSpan.FromSeconds(10));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(6)));
        Assert.That(text, Does.Contain("<stream:stream").And.Contain("connection-timeout").And.Contain("</stream:stream>"));
    }

    [Test]
    public async Task With_federation_off_nothing_listens_and_stanzas_to_other_domains_get_remote_server_not_found()
    {
        int port = TestServer.FreePort();
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "b.test";
            o["Xmpp:S2s:Enabled"] = "false";
            o["Xmpp:S2s:Port"] = port.ToString();
        });
        using (var probe = new TcpClient())
        {
            var refused = Assert.ThrowsAsync<SocketException>(async () => await probe.ConnectAsync("127.0.0.1", port));
            Assert.That(refused!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionRefused));
        }
        await server.AddUserAsync("bob", "bob-secret");
        await using var bob = await Login(server, "bob");
        // RFC 6120 §8.3.3.16: the remote domain cannot be reached from here.
        await bob.SendAsync("<message to='alice@a.test' type='chat' id='off-1'><body>anyone?</body></message>");
        await bob.SendAsync("<iq to='a.test' type='get' id='off-2'><ping xmlns='urn:xmpp:ping'/></iq>");
        var message = await bob.ReceiveAsync(e => e.Attr("id") == "off-1", TimeSpan.FromSeconds(5));
        var iq = await bob.ReceiveAsync(e => e.Attr("id") == "off-2", TimeSpan.FromSeconds(5));
        Assert.That(X.Matches(message, X.Parse(
            "<message type='error' from='alice@a.test'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")),
            message.ToString());
        Assert.That(X.Matches(iq, X.Parse(
            "<iq type='error' from='a.test'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")),
            iq.ToString());
    }

    private static async Task<string> ReadToEndAsync(NetworkStream stream, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[4096];
        var text = new StringBuilder();
        try
        {
            while (true)
            {
                int n = await stream.ReadAsync(buffer, cts.Token);
                if (n == 0) break;
                text.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException) { }
        return text.ToString();
    }
}
