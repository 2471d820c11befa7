using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// XEP-0388 SASL2 and XEP-0386 Bind 2 over real TLS sockets, and the XEP-0474 downgrade hash in both SASL profiles.
[TestFixture]
public sealed class Sasl2Tests
{
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await _server.AddUserAsync("alice", "wonderland-pw");
        await _server.AddUserAsync("bob", "builder-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    [Test]
    public async Task Sasl2_is_not_offered_before_tls()
    {
        await using var c = await TestClient.ConnectRawAsync(_server);
        var features = await c.OpenStreamAsync();
        Assert.That(features.Child("authentication", Ns.Sasl2), Is.Null);
    }

    [Test]
    public async Task Sasl2_offers_the_rfc6120_mechanisms_plus_the_plus_variants_with_bind2_and_fast_inline()
    {
        await using var c = await TestClient.OpenAsync(_server);
        // Issue 20: -PLUS only here, where the XEP-0440 feature is read; same order otherwise, PLAIN only because this is TLS.
        Assert.That(c.Sasl2Mechanisms().Where(m => !m.EndsWith("-PLUS")), Is.EqualTo(c.Mechanisms));
        Assert.That(c.Sasl2Mechanisms().Take(3), Is.EqualTo(new[] { "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS" }));
        Assert.That(c.Sasl2Mechanisms(), Does.Contain("PLAIN").And.Contain("SCRAM-SHA-256-PLUS"));
        var inline = c.Feature()!.Child("inline", Ns.Sasl2)!;
        Assert.That(inline.Child("bind", Ns.Bind2)?.Child("inline", Ns.Bind2), Is.Not.Null);
        Assert.That(c.FastMechanisms(), Is.EquivalentTo(new[] { HashedToken.Sha256EndPoint, HashedToken.Sha256None }),
            "no HT-SHA-256-UNIQ: TLS 1.3 has no tls-unique and .NET exposes no tls-exporter");
        Assert.That(c.ChannelBindingTypes(), Is.EqualTo(new[] { "tls-server-end-point" }));
    }

    [TestCase("SCRAM-SHA-1")]
    [TestCase("SCRAM-SHA-256")]
    [TestCase("SCRAM-SHA-512")]
    [TestCase("SCRAM-SHA-1-PLUS")]
    [TestCase("SCRAM-SHA-256-PLUS")]
    [TestCase("SCRAM-SHA-512-PLUS")]
    [TestCase("PLAIN")]
    public async Task Every_mechanism_logs_in_over_sasl2_without_a_stream_restart(string mechanism)
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (outcome, _) = await c.ScramAsync("alice", "wonderland-pw", mechanism);
        Assert.That(outcome.Is("success", Ns.Sasl2), outcome.ToString());
        Assert.That(outcome.ChildText("authorization-identifier", Ns.Sasl2), Is.EqualTo("alice@localhost"));
        var features = await c.ReadElementAsync();
        Assert.That(features.Is("features", Ns.Streams), "features follow <success/> at once (XEP-0388 §2.6.1)");
        Assert.That(features.Child("bind", Ns.Bind), Is.Not.Null);
        await c.BindAsync("desk");
        c.StartReading();
        var pong = await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Wrong_password_fails_with_not_authorized_and_the_stream_may_retry()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (failure, _) = await c.ScramAsync("bob", "wrong", "SCRAM-SHA-256");
        Assert.That(failure.Is("failure", Ns.Sasl2), failure.ToString());
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        var (success, _) = await c.ScramAsync("bob", "builder-pw", "SCRAM-SHA-256");
        Assert.That(success.Is("success", Ns.Sasl2), success.ToString());
    }

    [Test]
    public async Task Unknown_mechanism_fails_with_invalid_mechanism()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.SendAsync(Sasl2Login.Authenticate("DIGEST-MD5", [1, 2, 3]));
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Is("failure", Ns.Sasl2) && failure.Condition() == SaslFailures.InvalidMechanism, failure.ToString());
    }

    [Test]
    public async Task Abort_ends_the_exchange_with_aborted()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var scram = new ScramClient(ScramHash.Sha256, "alice", "wonderland-pw");
        await c.SendAsync(Sasl2Login.Authenticate("SCRAM-SHA-256", scram.ClientFirst()));
        Assert.That((await c.ReadElementAsync()).Is("challenge", Ns.Sasl2));
        await c.SendAsync(new Element("abort", Ns.Sasl2));
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.Aborted), failure.ToString());
    }

    [Test]
    public async Task A_stanza_in_the_middle_of_authentication_ends_the_stream()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var scram = new ScramClient(ScramHash.Sha256, "alice", "wonderland-pw");
        await c.SendAsync(Sasl2Login.Authenticate("SCRAM-SHA-256", scram.ClientFirst()));
        Assert.That((await c.ReadElementAsync()).Is("challenge", Ns.Sasl2));
        await c.SendAsync("<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.PolicyViolation));
    }

    [Test]
    public async Task Bad_base64_in_the_initial_response_fails_with_incorrect_encoding()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.SendAsync("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>@@@</initial-response></authenticate>");
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.IncorrectEncoding), failure.ToString());
    }

    [Test]
    public async Task Repeated_wrong_passwords_are_throttled()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Auth:FreeFailures"] = "2";
            o["Xmpp:Auth:MaxAttemptsPerStream"] = "3";
        });
        await server.AddUserAsync("carol", "correct-pw");
        await using var c = await TestClient.OpenAsync(server);
        for (int i = 0; i < 2; i++)
            Assert.That((await c.ScramAsync("carol", "nope", "SCRAM-SHA-1")).Outcome.Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        var (throttled, _) = await c.ScramAsync("carol", "correct-pw", "SCRAM-SHA-1");
        Assert.That(throttled.Condition(), Is.EqualTo(SaslFailures.TemporaryAuthFailure), "the back-off applies to SASL2 too");
        Assert.That(throttled.ChildText("text", Ns.Sasl2), Does.Contain("try again"));
    }

    [Test]
    public async Task Third_wrong_password_on_one_stream_closes_it_with_policy_violation()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Auth:FreeFailures"] = "100";
            o["Xmpp:Auth:MaxAttemptsPerStream"] = "3";
        });
        await server.AddUserAsync("carol", "correct-pw");
        await using var c = await TestClient.OpenAsync(server);
        for (int i = 0; i < 2; i++)
            Assert.That((await c.ScramAsync("carol", "nope", "SCRAM-SHA-1")).Outcome.Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        var (last, _) = await c.ScramAsync("carol", "nope", "SCRAM-SHA-1");
        Assert.That(last.Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That(await c.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.PolicyViolation));
    }

    [Test]
    public async Task Bind2_with_a_tag_binds_tag_slash_random_and_reports_the_full_jid()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (success, _) = await c.ScramAsync("alice", "wonderland-pw", extend: a => a.Add(Sasl2Login.Bind("AwesomeXMPP")));
        Assert.That(success.Is("success", Ns.Sasl2), success.ToString());
        var jid = Jid.Parse(success.ChildText("authorization-identifier", Ns.Sasl2)!);
        Assert.That(jid.Bare.ToString(), Is.EqualTo("alice@localhost"));
        Assert.That(jid.Resource, Does.Match("^AwesomeXMPP/[0-9a-f]{12}$"));
        Assert.That(success.Child("bound", Ns.Bind2), Is.Not.Null);
        var features = await c.ReadElementAsync();
        Assert.That(features.Is("features", Ns.Streams) && features.Child("bind", Ns.Bind) is null, "already bound: no bind feature " + features);

        c.StartReading();
        await c.SendAsync(new Element("presence", Ns.Client));
        await using var bob = await TestClient.ConnectAsync(_server, "bob", "builder-pw", "desk");
        await bob.SendAsync($"<message to='{jid}' type='chat'><body>hi</body></message>");
        var message = await c.ReceiveAsync("message");
        Assert.That(message.ChildText("body", Ns.Client), Is.EqualTo("hi"));
    }

    [Test]
    public async Task Bind2_without_a_tag_gets_a_random_resource()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (success, _) = await c.ScramAsync("alice", "wonderland-pw", extend: a => a.Add(Sasl2Login.Bind()));
        var jid = Jid.Parse(success.ChildText("authorization-identifier", Ns.Sasl2)!);
        Assert.That(jid.Resource, Does.Match("^[0-9a-f]{12}$"));
    }

    [Test]
    public async Task Bind2_from_the_same_user_agent_replaces_its_earlier_session()
    {
        const string agent = "0a6d3c4e-7f1b-4c2d-9e8f-112233445566";
        await using var first = await TestClient.OpenAsync(_server);
        var (one, _) = await first.ScramAsync("bob", "builder-pw", extend: a => a.Add(Sasl2Login.Bind("Phone")), userAgent: agent);
        Assert.That(one.Is("success", Ns.Sasl2));
        await first.ReadElementAsync();
        await using var second = await TestClient.OpenAsync(_server);
        var (two, _) = await second.ScramAsync("bob", "builder-pw", extend: a => a.Add(Sasl2Login.Bind("Phone")), userAgent: agent);
        Assert.That(two.Is("success", Ns.Sasl2));
        Assert.That(await first.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.Conflict));
    }

    [TestCase("SCRAM-SHA-1")]
    [TestCase("SCRAM-SHA-256-PLUS")]
    [TestCase("SCRAM-SHA-512")]
    public async Task Sasl2_server_first_message_carries_the_xep0474_hash_of_what_was_advertised(string mechanism)
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (outcome, scram) = await c.ScramAsync("alice", "wonderland-pw", mechanism);
        Assert.That(outcome.Is("success", Ns.Sasl2));
        ScramHashes.TryParseMechanism(mechanism, out var hash, out _);
        var expected = ScramDowngradeProtection.Compute(hash, c.Sasl2Mechanisms(), c.ChannelBindingTypes());
        Assert.That(scram!.DowngradeProtection, Is.EqualTo(expected));
    }

    [Test]
    public async Task Sasl1_server_first_message_carries_the_xep0474_hash_of_its_own_mechanism_list()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var scram = new ScramClient(ScramHash.Sha256, "alice", "wonderland-pw", serverSupportsPlus: true);
        await c.SendAsync(new Element("auth", Ns.Sasl).SetAttr("mechanism", "SCRAM-SHA-256").SetText(Convert.ToBase64String(scram.ClientFirst())));
        var challenge = await c.ReadElementAsync();
        var final = scram.ClientFinal(Convert.FromBase64String(challenge.Text));
        Assert.That(scram.DowngradeProtection, Is.EqualTo(ScramDowngradeProtection.Compute(ScramHash.Sha256, c.Mechanisms, c.ChannelBindingTypes())));
        Assert.That(c.Mechanisms, Has.None.EndsWith("-PLUS"), "RFC 6120 SASL lists no -PLUS (issue 20)");
        Assert.That(scram.DowngradeProtection, Is.Not.EqualTo(ScramDowngradeProtection.Compute(ScramHash.Sha256, c.Sasl2Mechanisms(), c.ChannelBindingTypes())),
            "each profile hashes the list it showed, so SASL2's list with -PLUS gives another hash");
        Assert.That(scram.DowngradeProtection, Is.Not.EqualTo(ScramDowngradeProtection.Compute(ScramHash.Sha256, c.Mechanisms, null)),
            "a stripped XEP-0440 feature gives another hash, which is the point");
        await c.SendAsync(new Element("response", Ns.Sasl).SetText(Convert.ToBase64String(final)));
        Assert.That((await c.ReadElementAsync()).Is("success", Ns.Sasl));
    }
}
