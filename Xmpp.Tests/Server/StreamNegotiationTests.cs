using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// RFC 6120 negotiation over real sockets: header, STARTTLS, SASL, bind.
[TestFixture]
public sealed class StreamNegotiationTests
{
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await _server.AddUserAsync("alice", "wonderland-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    [Test]
    public async Task First_features_offer_only_required_starttls()
    {
        await using var c = await TestClient.ConnectRawAsync(_server);
        var features = await c.OpenStreamAsync();
        Assert.That(c.ServerHeader!.Attr("from"), Is.EqualTo("localhost"));
        Assert.That(c.ServerHeader.Attr("version"), Is.EqualTo("1.0"));
        Assert.That(c.ServerHeader.Attr("id"), Is.Not.Null.And.Length.GreaterThan(8));
        Assert.That(features.Child("starttls", Ns.Tls)?.Child("required", Ns.Tls), Is.Not.Null);
        Assert.That(features.Child("mechanisms", Ns.Sasl), Is.Null, "no SASL before TLS when TLS is required");
    }

    // Issue 20: RFC 6120 SASL lists no -PLUS, since a client that ignores XEP-0440 would bind with the default type
    // (tls-unique, or tls-exporter under TLS 1.3: RFC 5802 §6, RFC 9266 §3), and this server has neither; SASL2 lists
    // -PLUS with the XEP-0440 feature naming the one type it has.
    [TestCase(TlsMode.StartTls)]
    [TestCase(TlsMode.Direct)]
    public async Task Rfc6120_sasl_offers_scram_and_plain_and_sasl2_adds_plus_with_tls_server_end_point(TlsMode tls)
    {
        await using var c = await TestClient.OpenAsync(_server, tls);
        Assert.That(c.Mechanisms, Is.EqualTo(new[] { "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN" }), "strongest first, no -PLUS");
        Assert.That(c.Sasl2Mechanisms(), Is.EqualTo(new[]
        {
            "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN",
        }));
        Assert.That(X.Matches(c.Features!, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/></sasl-channel-binding></stream:features>"));
        Assert.That(c.Features!.Child("limits", Ns.StreamLimits)?.ChildText("max-bytes", Ns.StreamLimits), Is.EqualTo("262144"));
        Assert.That(c.Tls!.SslProtocol, Is.AnyOf(System.Security.Authentication.SslProtocols.Tls12, System.Security.Authentication.SslProtocols.Tls13));
    }

    [TestCase("SCRAM-SHA-1", TlsMode.StartTls)]
    [TestCase("SCRAM-SHA-256", TlsMode.StartTls)]
    [TestCase("SCRAM-SHA-512", TlsMode.StartTls)]
    [TestCase("PLAIN", TlsMode.StartTls)]
    [TestCase("SCRAM-SHA-1", TlsMode.Direct)]
    [TestCase("SCRAM-SHA-256", TlsMode.Direct)]
    [TestCase("SCRAM-SHA-512", TlsMode.Direct)]
    public async Task Every_mechanism_logs_in_and_binds(string mechanism, TlsMode tls)
    {
        await using var c = await TestClient.ConnectAsync(_server, "alice", "wonderland-pw", "desk", tls, mechanism);
        Assert.That(c.Jid!.ToString(), Is.EqualTo("alice@localhost/desk"));
        var pong = await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        Assert.That(pong.Attr("from"), Is.EqualTo("localhost"));
    }

    [TestCase("SCRAM-SHA-256-PLUS")]
    [TestCase("SCRAM-SHA-512-PLUS")]
    public async Task A_plus_mechanism_over_rfc6120_sasl_is_refused_as_not_offered(string mechanism)
    {
        // -PLUS with tls-server-end-point works over SASL2 (Sasl2Tests, FastTests); here it was never listed.
        await using var c = await TestClient.OpenAsync(_server);
        var failure = await c.TryAuthenticateAsync("alice", "wonderland-pw", mechanism);
        Assert.That(X.Matches(failure, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>"), failure.ToString());
    }

    [Test]
    public async Task Direct_tls_negotiates_alpn_xmpp_client()
    {
        await using var c = await TestClient.ConnectRawAsync(_server, directTls: true);
        Assert.That(c.Tls!.NegotiatedApplicationProtocol.ToString(), Is.EqualTo("xmpp-client"));
        var features = await c.OpenStreamAsync();
        Assert.That(features.Child("mechanisms", Ns.Sasl), Is.Not.Null);
        Assert.That(features.Child("starttls", Ns.Tls), Is.Null, "TLS is already on");
    }

    [Test]
    public async Task Username_is_case_mapped_at_login()
    {
        await using var c = await TestClient.ConnectAsync(_server, "ALICE", "wonderland-pw", "r1");
        Assert.That(c.Jid!.Bare.ToString(), Is.EqualTo("alice@localhost"));
    }

    [TestCase("SCRAM-SHA-256")]
    [TestCase("PLAIN")]
    public async Task Wrong_password_fails_with_not_authorized(string mechanism)
    {
        await using var c = await TestClient.OpenAsync(_server);
        var result = await c.TryAuthenticateAsync("alice", "wrong-password", mechanism);
        Assert.That(X.Matches(result, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"), result.ToString());
    }

    [Test]
    public async Task Unknown_user_fails_like_a_wrong_password()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var result = await c.TryAuthenticateAsync("nobody", "whatever", "SCRAM-SHA-256");
        Assert.That(result.Is("failure", Ns.Sasl) && result.Child("not-authorized", Ns.Sasl) is not null, result.ToString());
    }

    [Test]
    public async Task Client_may_retry_after_a_failure_on_the_same_stream()
    {
        await using var c = await TestClient.OpenAsync(_server);
        Assert.That((await c.TryAuthenticateAsync("alice", "bad", "SCRAM-SHA-1")).Name, Is.EqualTo("failure"));
        Assert.That((await c.TryAuthenticateAsync("alice", "wonderland-pw", "SCRAM-SHA-1")).Name, Is.EqualTo("success"));
    }

    [Test]
    public async Task Unoffered_mechanism_is_invalid_mechanism()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.SendRawAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Child("invalid-mechanism", Ns.Sasl), Is.Not.Null, failure.ToString());
    }

    [Test]
    public async Task Bad_base64_is_incorrect_encoding()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.SendRawAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!notbase64</auth>");
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Child("incorrect-encoding", Ns.Sasl), Is.Not.Null, failure.ToString());
    }

    [Test]
    public async Task Abort_cancels_an_exchange()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.SendRawAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'/>");
        var challenge = await c.ReadElementAsync();
        Assert.That(challenge.Name, Is.EqualTo("challenge"));
        await c.SendRawAsync("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Child("aborted", Ns.Sasl), Is.Not.Null, failure.ToString());
    }

    [Test]
    public async Task Auth_before_tls_is_refused_with_encryption_required()
    {
        await using var c = await TestClient.ConnectRawAsync(_server);
        await c.OpenStreamAsync();
        await c.SendRawAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdvbmRlcmxhbmQtcHc=</auth>");
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Child("encryption-required", Ns.Sasl), Is.Not.Null, failure.ToString());
    }

    [Test]
    public async Task After_auth_features_offer_bind_session_and_caps()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.AuthenticateAsync("alice", "wonderland-pw");
        Assert.That(c.Features!.Child("bind", Ns.Bind), Is.Not.Null);
        Assert.That(c.Features.Child("session", Ns.Session)?.Child("optional", Ns.Session), Is.Not.Null);
        Assert.That(c.Features.Child("c", Ns.Caps)?.Attr("ver"), Is.Not.Null);
        Assert.That(c.Features.Child("mechanisms", Ns.Sasl), Is.Null);
    }

    [Test]
    public async Task Server_generates_a_resource_when_none_is_asked_for()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.AuthenticateAsync("alice", "wonderland-pw");
        await c.BindAsync(null);
        Assert.That(c.Jid!.Resource, Is.Not.Null.And.Length.GreaterThan(8));
        Assert.That(c.Jid.Bare.ToString(), Is.EqualTo("alice@localhost"));
    }

    [Test]
    public async Task Legacy_session_iq_is_accepted()
    {
        await using var c = await TestClient.ConnectAsync(_server, "alice", "wonderland-pw", "legacy");
        var result = await c.IqAsync("<iq type='set'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        Assert.That(result.Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Resource_conflict_closes_the_older_session_with_conflict()
    {
        await using var first = await TestClient.ConnectAsync(_server, "alice", "wonderland-pw", "phone");
        await using var second = await TestClient.ConnectAsync(_server, "alice", "wonderland-pw", "phone");
        var error = await first.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child("conflict", Ns.StreamErrors), Is.Not.Null, error.ToString());
        var pong = await second.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"), "the new session keeps working");
    }

    [Test]
    public async Task Client_closing_its_stream_gets_the_closing_tag()
    {
        var c = await TestClient.ConnectAsync(_server, "alice", "wonderland-pw", "closer");
        await c.SendRawAsync("</stream:stream>");
        Assert.That(await Wait.UntilAsync(() => c.StreamEnded), Is.True, "the server answered with its closing tag");
        await c.DisposeAsync();
    }
    [Test]
    public async Task Downgrade_flag_y_fails_over_sasl2_where_plus_is_offered_even_with_the_right_password()
    {
        await using var c = await TestClient.OpenAsync(_server);
        // 'y': "I support channel binding but think you do not". SASL2 listed -PLUS, so the list was tampered with.
        var (failure, _) = await c.ScramYAsync("alice", "wonderland-pw", sasl2: true);
        Assert.That(failure.Is("failure", Ns.Sasl2), failure.ToString());
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
    }

    [TestCase(TlsMode.StartTls)]
    [TestCase(TlsMode.Direct)]
    public async Task Flag_y_logs_in_on_the_first_try_over_rfc6120_sasl_which_lists_no_plus(TlsMode tls)
    {
        // What slixmpp does with default settings: it can bind, sees no -PLUS, says so with 'y' (RFC 5802 §6).
        await using var c = await TestClient.OpenAsync(_server, tls);
        var (outcome, _) = await c.ScramYAsync("alice", "wonderland-pw", sasl2: false);
        Assert.That(outcome.Is("success", Ns.Sasl), outcome.ToString());
    }

    [Test]
    public async Task Tls_unique_over_sasl2_fails_with_the_rfc5802_error_value_and_a_following_y_is_still_a_downgrade()
    {
        await using var c = await TestClient.OpenAsync(_server);
        Assert.That(c.Tls!.SslProtocol, Is.EqualTo(System.Security.Authentication.SslProtocols.Tls13), "the case where tls-unique does not exist");
        var plusFirst = System.Text.Encoding.ASCII.GetBytes("p=tls-unique,,n=alice,r=abcdefghijklmnop");
        await c.SendAsync(Sasl2Login.Authenticate("SCRAM-SHA-256-PLUS", plusFirst));
        var failure = await c.ReadElementAsync();
        // RFC 5802 §6: an unsupported type fails the exchange; §7 names it, and the text carries that name.
        Assert.That(X.Matches(failure, "<failure xmlns='urn:xmpp:sasl:2'><malformed-request xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>unsupported-channel-binding-type</text></failure>"), failure.ToString());
        // Falling back to 'y' after that is no excuse: an attacker who stripped -PLUS could send the first attempt itself.
        var (second, _) = await c.ScramYAsync("alice", "wonderland-pw", sasl2: true);
        Assert.That(second.Condition(), Is.EqualTo(SaslFailures.NotAuthorized), second.ToString());
    }

    [Test]
    public async Task Whitespace_after_starttls_does_not_break_the_handshake()
    {
        // COMPAT(go-sendxmpp): it writes a newline after <starttls/>.
        await using var c = await TestClient.ConnectRawAsync(_server);
        await c.OpenStreamAsync();
        await c.StartTlsAsync("\n  ");
        var features = await c.OpenStreamAsync();
        Assert.That(features.Child("mechanisms", Ns.Sasl), Is.Not.Null);
    }
}
