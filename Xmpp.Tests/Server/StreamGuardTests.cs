using System.Diagnostics;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Every guard answers bad input with the RFC's stream or stanza error, never a crash, hang or silent drop.
[TestFixture]
public sealed class StreamGuardTests
{
    private const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(configure: configure);
        await s.AddUserAsync("alice", "wonderland-pw");
        await s.AddUserAsync("bob", "builder-pw");
        return s;
    }

    private static async Task<string?> ErrorAfterRaw(TestServer server, string raw, bool tls = false)
    {
        await using var c = tls ? await TestClient.OpenAsync(server) : await TestClient.ConnectRawAsync(server);
        await c.SendRawAsync(raw);
        return await c.ReadStreamErrorAsync();
    }

    [TestCase(Header + "<message><body>unclosed</message>", StreamErrors.NotWellFormed)]
    [TestCase(Header + "<message><body a='1' a='2'/></message>", StreamErrors.NotWellFormed)]
    [TestCase(Header + "<!-- a comment -->", StreamErrors.RestrictedXml)]
    [TestCase(Header + "<?php echo 1; ?>", StreamErrors.RestrictedXml)]
    [TestCase("<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY lol 'lol'>]>" + Header, StreamErrors.RestrictedXml)]
    [TestCase(Header + "<message><body>&lol;</body></message>", StreamErrors.RestrictedXml)]
    [TestCase("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>", StreamErrors.InvalidNamespace)]
    [TestCase("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>", StreamErrors.InvalidNamespace)]
    [TestCase("<?xml version='1.0'?><s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' to='localhost' version='1.0'>", StreamErrors.BadNamespacePrefix)]
    [TestCase("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.net' version='1.0'>", StreamErrors.HostUnknown)]
    [TestCase("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>", StreamErrors.UnsupportedVersion)]
    [TestCase("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='2.0'>", StreamErrors.UnsupportedVersion)]
    [TestCase(Header + "<message to='bob@localhost'><body>hi</body></message>", StreamErrors.PolicyViolation)]
    public async Task Bad_input_before_authentication_ends_in_the_right_stream_error(string raw, string condition)
    {
        await using var server = await Server();
        Assert.That(await ErrorAfterRaw(server, raw), Is.EqualTo(condition));
    }

    [Test]
    public async Task Invalid_utf8_is_not_well_formed()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectRawAsync(server);
        await c.SendRawAsync(Header);
        await c.SendBytesAsync(new byte[] { (byte)'<', (byte)'a', 0xC3, 0x28, (byte)'/', (byte)'>' });
        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.NotWellFormed));
    }

    [Test]
    public async Task Stanza_after_tls_but_before_auth_is_not_authorized()
    {
        await using var server = await Server();
        await using var c = await TestClient.OpenAsync(server);
        await c.SendRawAsync("<message to='bob@localhost'><body>sneaky</body></message>");
        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.NotAuthorized));
    }

    [Test]
    public async Task Oversized_stanza_is_policy_violation_before_it_is_complete()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "big");
        var body = new string('x', 300 * 1024);
        // The closing part is never sent: the server must stop at the limit, not wait for the end.
        await c.SendRawAsync($"<message to='bob@localhost'><body>{body}");
        var error = await c.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child(StreamErrors.PolicyViolation, Ns.StreamErrors), Is.Not.Null);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(0));
    }

    [Test]
    public async Task Too_deep_nesting_is_policy_violation()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "deep");
        var sb = new StringBuilder("<message to='bob@localhost'>");
        for (int i = 0; i < 60; i++) sb.Append("<x xmlns='urn:deep'>");
        await c.SendRawAsync(sb.ToString());
        var error = await c.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child(StreamErrors.PolicyViolation, Ns.StreamErrors), Is.Not.Null);
    }

    [Test]
    public async Task Too_many_attributes_is_policy_violation()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "attrs");
        var attrs = string.Join(" ", Enumerable.Range(0, 80).Select(i => $"a{i}='v'"));
        await c.SendRawAsync($"<message to='bob@localhost'><x xmlns='urn:a' {attrs}/></message>");
        var error = await c.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child(StreamErrors.PolicyViolation, Ns.StreamErrors), Is.Not.Null);
    }

    [Test]
    public async Task Unknown_top_level_element_is_unsupported_stanza_type()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "odd");
        await c.SendRawAsync("<foo xmlns='jabber:client'/>");
        var error = await c.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child(StreamErrors.UnsupportedStanzaType, Ns.StreamErrors), Is.Not.Null);
    }

    [Test]
    public async Task Spoofed_from_is_invalid_from()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "spoof");
        await c.SendRawAsync("<message from='bob@localhost/x' to='bob@localhost'><body>I am bob</body></message>");
        var error = await c.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child(StreamErrors.InvalidFrom, Ns.StreamErrors), Is.Not.Null);
    }

    [Test]
    public async Task Half_a_stanza_then_disconnect_stores_nothing_and_the_server_keeps_serving()
    {
        await using var server = await Server();
        var c = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "half");
        await c.SendRawAsync("<message to='bob@localhost' type='chat'><body>never fini");
        c.Abort();
        await Task.Delay(300);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(0));
        await using var again = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "half");
        Assert.That((await again.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")).Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task A_stream_that_never_authenticates_is_closed_with_connection_timeout()
    {
        await using var server = await Server(o => o["Xmpp:Limits:UnauthenticatedTimeoutSeconds"] = "1");
        await using var c = await TestClient.ConnectRawAsync(server);
        await c.OpenStreamAsync();
        var sw = Stopwatch.StartNew();
        Assert.That(await c.ReadStreamErrorAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(StreamErrors.ConnectionTimeout));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public async Task Connections_beyond_the_per_ip_limit_get_policy_violation()
    {
        await using var server = await Server(o => o["Xmpp:Limits:MaxConnectionsPerIp"] = "2");
        await using var a = await TestClient.ConnectRawAsync(server);
        await a.OpenStreamAsync();
        await using var b = await TestClient.ConnectRawAsync(server);
        await b.OpenStreamAsync();
        await using var third = await TestClient.ConnectRawAsync(server);
        await third.SendRawAsync(Header);
        Assert.That(await third.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.PolicyViolation));
    }

    [Test]
    public async Task Failed_logins_are_throttled_but_the_right_password_works_after_the_backoff()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:Auth:FreeFailures"] = "2";
            o["Xmpp:Auth:BackoffSeconds"] = "1";
            o["Xmpp:Auth:MaxAttemptsPerStream"] = "10";
        });
        await using var c = await TestClient.OpenAsync(server);
        for (int i = 0; i < 2; i++)
            Assert.That((await c.TryAuthenticateAsync("alice", "nope", "PLAIN")).Child("not-authorized", Ns.Sasl), Is.Not.Null);
        // Third attempt inside the back-off: refused without even checking the password.
        var throttled = await c.TryAuthenticateAsync("alice", "wonderland-pw", "PLAIN");
        Assert.That(throttled.Child("temporary-auth-failure", Ns.Sasl), Is.Not.Null, throttled.ToString());
        await Task.Delay(1200);
        Assert.That((await c.TryAuthenticateAsync("alice", "wonderland-pw", "PLAIN")).Name, Is.EqualTo("success"),
            "a user who mistyped is not locked out");
    }

    // Issue 20: only a failed proof check (wrong password, unknown user) is a guess. An unsupported channel-binding
    // type, a malformed message or mismatched channel binding is decided before the proof is looked at; counting them
    // let a client with the right password (slixmpp's -PLUS attempts) back itself off, and a stranger lock it out.
    [Test]
    public async Task Protocol_level_sasl_failures_never_feed_the_login_backoff_but_wrong_passwords_do()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:Auth:FreeFailures"] = "2";
            o["Xmpp:Auth:BackoffSeconds"] = "30";
            o["Xmpp:Auth:MaxAttemptsPerStream"] = "10";
        });
        var throttle = server.Get<Xmpp.Server.Auth.AuthThrottle>();
        await using (var c = await TestClient.OpenAsync(server))
        {
            for (int round = 0; round < 2; round++)
            {
                // An unsupported channel-binding type (RFC 5802 §6), as slixmpp sends under TLS 1.3.
                await c.SendAsync(Sasl2Login.Authenticate("SCRAM-SHA-256-PLUS", Encoding.ASCII.GetBytes("p=tls-unique,,n=alice,r=abcdefghijkl")));
                Assert.That((await c.ReadElementAsync()).Condition(), Is.EqualTo(SaslFailures.MalformedRequest));
                // tls-server-end-point with the wrong data and the right password.
                var wrongBinding = new ScramClient(ScramHash.Sha256, "alice", "wonderland-pw", cbindData: new byte[32], serverSupportsPlus: true);
                await c.SendAsync(Sasl2Login.Authenticate("SCRAM-SHA-256-PLUS", wrongBinding.ClientFirst()));
                var challenge = await c.ReadElementAsync();
                await c.SendAsync(new Element("response", Ns.Sasl2).SetText(Convert.ToBase64String(wrongBinding.ClientFinal(Convert.FromBase64String(challenge.Text)))));
                Assert.That((await c.ReadElementAsync()).Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
                // A client-final-message without a proof (RFC 5802 §7 invalid-encoding).
                var scram = new ScramClient(ScramHash.Sha256, "alice", "wonderland-pw");
                await c.SendAsync(new Element("auth", Ns.Sasl).SetAttr("mechanism", "SCRAM-SHA-256").SetText(Convert.ToBase64String(scram.ClientFirst())));
                await c.ReadElementAsync();
                await c.SendAsync(new Element("response", Ns.Sasl).SetText(Convert.ToBase64String("c=biws,r=x"u8.ToArray())));
                Assert.That((await c.ReadElementAsync()).Condition(), Is.EqualTo(SaslFailures.MalformedRequest));
            }
        }
        Assert.That(throttle.RetryAfter(Xmpp.Server.Auth.AuthThrottle.UserKey("alice")), Is.Null, "six protocol failures, none counted");
        await using (var c = await TestClient.OpenAsync(server))
            Assert.That((await c.TryAuthenticateAsync("alice", "wonderland-pw")).Name, Is.EqualTo("success"), "neither the account nor the IP is backed off");

        await using (var c = await TestClient.OpenAsync(server))
        {
            for (int i = 0; i < 2; i++)
                Assert.That((await c.TryAuthenticateAsync("alice", "nope")).Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
            Assert.That(throttle.RetryAfter(Xmpp.Server.Auth.AuthThrottle.UserKey("alice")), Is.Not.Null, "two wrong SCRAM proofs use up the free failures");
            Assert.That((await c.TryAuthenticateAsync("alice", "wonderland-pw")).Condition(), Is.EqualTo(SaslFailures.TemporaryAuthFailure));
        }
    }

    [Test]
    public async Task Too_many_failed_attempts_on_one_stream_close_it()
    {
        await using var server = await Server(o => o["Xmpp:Auth:MaxAttemptsPerStream"] = "2");
        await using var c = await TestClient.OpenAsync(server);
        await c.TryAuthenticateAsync("alice", "nope", "PLAIN");
        await c.SendRawAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAG5vcGU=</auth>");
        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.PolicyViolation));
    }

    [Test]
    public async Task A_fast_sender_is_slowed_to_the_read_rate_not_disconnected()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:Limits:ReadBytesPerSecond"] = "100000";
            o["Xmpp:Limits:ReadBurstBytes"] = "10000";
            o["Xmpp:Limits:MaxStanzaBytes"] = "10000";
        });
        await using var c = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "fast");
        var sw = Stopwatch.StartNew();
        var chunk = Encoding.UTF8.GetBytes(new string(' ', 50_000)); // whitespace between stanzas is legal
        for (int i = 0; i < 5; i++) await c.SendBytesAsync(chunk);
        var pong = await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", TimeSpan.FromSeconds(20));
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        Assert.That(sw.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(1.5)), "250 kB at 100 kB/s takes more than 1.5 s");
    }

    [Test]
    public async Task A_client_that_answers_nothing_is_detected_dead_and_closed()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:Ping:IdleSeconds"] = "1";
            o["Xmpp:Ping:TimeoutSeconds"] = "1";
        });
        await using var silent = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "silent");
        var ping = await silent.ReceiveAsync(e => e.Name == "iq" && e.Child("ping", Ns.Ping) is not null, TimeSpan.FromSeconds(5));
        Assert.That(ping.Attr("type"), Is.EqualTo("get"));
        var error = await silent.ReceiveAsync(e => e.Is("error", Ns.Streams), TimeSpan.FromSeconds(6));
        Assert.That(error.Child(StreamErrors.ConnectionTimeout, Ns.StreamErrors), Is.Not.Null);
    }

    [Test]
    public async Task A_client_that_answers_pings_stays_connected()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:Ping:IdleSeconds"] = "1";
            o["Xmpp:Ping:TimeoutSeconds"] = "1";
        });
        await using var alive = await TestClient.ConnectAsync(server, "alice", "wonderland-pw", "alive");
        for (int i = 0; i < 3; i++)
        {
            var ping = await alive.ReceiveAsync(e => e.Name == "iq" && e.Child("ping", Ns.Ping) is not null, TimeSpan.FromSeconds(5));
            await alive.SendRawAsync($"<iq type='result' id='{ping.Attr("id")}' to='localhost'/>");
        }
        var pong = await alive.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Whitespace_keepalives_are_sent_on_quiet_streams()
    {
        await using var server = await Server(o => o["Xmpp:Ping:WhitespaceKeepaliveSeconds"] = "1");
        await using var c = await TestClient.OpenAsync(server);
        await c.AuthenticateAsync("alice", "wonderland-pw");
        await c.BindAsync("ws");
        var stream = c.Tls!;
        var buffer = new byte[16];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        int n = await stream.ReadAsync(buffer, cts.Token);
        Assert.That(Encoding.UTF8.GetString(buffer, 0, n).Trim(), Is.Empty, "only whitespace arrives on a quiet stream");
        Assert.That(n, Is.GreaterThan(0));
    }
}
