using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// XEP-0484 FAST: a password login earns a token; later logins use the token in one round trip.
[TestFixture]
public sealed class FastTests
{
    private const string Agent = "5f0c2a8e-3b1d-4e6f-a7b8-c9d0e1f2a3b4";
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        // Many failures on purpose here; the back-off has its own test below.
        _server = await TestServer.StartAsync(configure: o => o["Xmpp:Auth:FreeFailures"] = "1000");
        await _server.AddUserAsync("alice", "wonderland-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private async Task<Element> RequestTokenAsync(string user, string password, string mechanism, string agent = Agent, TestServer? server = null)
    {
        await using var c = await TestClient.OpenAsync(server ?? _server);
        var (success, _) = await c.ScramAsync(user, password, "SCRAM-SHA-256-PLUS",
            extend: a => a.Add(Sasl2Login.RequestToken(mechanism)), userAgent: agent);
        Assert.That(success.Is("success", Ns.Sasl2), success.ToString());
        return success.Child("token", Ns.Fast) ?? throw new AssertionException("no token in " + success);
    }

    private async Task<Element> LoginWithTokenAsync(string user, string token, string mechanism, string agent = Agent,
        long? count = null, bool invalidate = false, Action<Element>? extend = null, TestServer? server = null)
    {
        await using var c = await TestClient.OpenAsync(server ?? _server);
        return await c.TokenAsync(user, token, mechanism, extend, agent, count, invalidate);
    }

    [Test]
    public async Task A_requested_token_comes_with_an_expiry_about_fourteen_days_ahead()
    {
        var token = await RequestTokenAsync("alice", "wonderland-pw", HashedToken.Sha256None, agent: Guid.NewGuid().ToString());
        Assert.That(token.Attr("token"), Is.Not.Null.And.Length.GreaterThanOrEqualTo(32));
        var expiry = DateTimeOffset.Parse(token.Attr("expiry")!);
        Assert.That(expiry, Is.EqualTo(DateTimeOffset.UtcNow.AddDays(14)).Within(TimeSpan.FromMinutes(5)));
    }

    [TestCase(HashedToken.Sha256None)]
    [TestCase(HashedToken.Sha256EndPoint)]
    public async Task A_token_logs_in_with_its_mechanism_and_binds_in_the_same_round_trip(string mechanism)
    {
        var agent = Guid.NewGuid().ToString();
        var token = (await RequestTokenAsync("alice", "wonderland-pw", mechanism, agent)).Attr("token")!;
        await using var c = await TestClient.OpenAsync(_server);
        var success = await c.TokenAsync("alice", token, mechanism, a => a.Add(Sasl2Login.Bind("Phone")), agent);
        Assert.That(success.Is("success", Ns.Sasl2), success.ToString());
        Assert.That(success.ChildText("authorization-identifier", Ns.Sasl2), Does.StartWith("alice@localhost/Phone/"));
        Assert.That(success.Child("token", Ns.Fast), Is.Null, "a fresh token is not due for rotation");
    }

    [Test]
    public async Task A_token_is_bound_to_the_mechanism_it_was_issued_for()
    {
        var agent = Guid.NewGuid().ToString();
        var token = (await RequestTokenAsync("alice", "wonderland-pw", HashedToken.Sha256EndPoint, agent)).Attr("token")!;
        var failure = await LoginWithTokenAsync("alice", token, HashedToken.Sha256None, agent);
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.NotAuthorized), failure.ToString());
    }

    [Test]
    public async Task A_token_works_only_for_the_client_it_was_issued_to()
    {
        var token = (await RequestTokenAsync("alice", "wonderland-pw", HashedToken.Sha256None, Guid.NewGuid().ToString())).Attr("token")!;
        var failure = await LoginWithTokenAsync("alice", token, HashedToken.Sha256None, Guid.NewGuid().ToString());
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.NotAuthorized), failure.ToString());
    }

    [Test]
    public async Task A_wrong_token_fails_with_not_authorized()
    {
        var agent = Guid.NewGuid().ToString();
        await RequestTokenAsync("alice", "wonderland-pw", HashedToken.Sha256None, agent);
        var failure = await LoginWithTokenAsync("alice", "not-the-token", HashedToken.Sha256None, agent);
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.NotAuthorized), failure.ToString());
    }

    [Test]
    public async Task Wrong_tokens_count_as_failed_logins_for_the_back_off()
    {
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:Auth:FreeFailures"] = "1");
        await server.AddUserAsync("frank", "frank-password");
        var token = (await RequestTokenAsync("frank", "frank-password", HashedToken.Sha256None, Agent, server)).Attr("token")!;
        Assert.That((await LoginWithTokenAsync("frank", "guess", HashedToken.Sha256None, server: server)).Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        var throttled = await LoginWithTokenAsync("frank", token, HashedToken.Sha256None, server: server);
        Assert.That(throttled.Condition(), Is.EqualTo(SaslFailures.TemporaryAuthFailure), throttled.ToString());
    }

    [Test]
    public async Task A_token_login_without_a_user_agent_is_malformed()
    {
        var failure = await LoginWithTokenAsync("alice", "whatever", HashedToken.Sha256None, agent: null!);
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.MalformedRequest), failure.ToString());
    }

    [Test]
    public async Task A_replayed_count_is_refused_and_a_higher_one_accepted()
    {
        var agent = Guid.NewGuid().ToString();
        var token = (await RequestTokenAsync("alice", "wonderland-pw", HashedToken.Sha256None, agent)).Attr("token")!;
        Assert.That((await LoginWithTokenAsync("alice", token, HashedToken.Sha256None, agent, count: 5)).Is("success", Ns.Sasl2));
        var replay = await LoginWithTokenAsync("alice", token, HashedToken.Sha256None, agent, count: 5);
        Assert.That(replay.Condition(), Is.EqualTo(SaslFailures.NotAuthorized), "count 5 was processed already: " + replay);
        var lower = await LoginWithTokenAsync("alice", token, HashedToken.Sha256None, agent, count: 3);
        Assert.That(lower.Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That((await LoginWithTokenAsync("alice", token, HashedToken.Sha256None, agent, count: 6)).Is("success", Ns.Sasl2));
    }

    [Test]
    public async Task A_new_token_leaves_the_old_one_valid_until_the_new_one_is_used()
    {
        var agent = Guid.NewGuid().ToString();
        var first = (await RequestTokenAsync("alice", "wonderland-pw", HashedToken.Sha256None, agent)).Attr("token")!;
        // The client logs in with its token and asks for a fresh one, then loses the connection before storing it.
        await using (var c = await TestClient.OpenAsync(_server))
        {
            var rotated = await c.TokenAsync("alice", first, HashedToken.Sha256None,
                a => a.Add(Sasl2Login.RequestToken(HashedToken.Sha256None)), agent);
            Assert.That(rotated.Child("token", Ns.Fast)?.Attr("token"), Is.Not.Null.And.Not.EqualTo(first));
            var second = rotated.Child("token", Ns.Fast)!.Attr("token")!;
            Assert.That((await LoginWithTokenAsync("alice", first, HashedToken.Sha256None, agent)).Is("success", Ns.Sasl2),
                "§3.5: the old token stays valid until the new one is used");
            Assert.That((await LoginWithTokenAsync("alice", second, HashedToken.Sha256None, agent)).Is("success", Ns.Sasl2));
            var old = await LoginWithTokenAsync("alice", first, HashedToken.Sha256None, agent);
            Assert.That(old.Condition(), Is.EqualTo(SaslFailures.NotAuthorized), "§3.5: using the new token invalidates the older one");
        }
    }

    [Test]
    public async Task Invalidate_logs_in_once_and_ends_the_token()
    {
        var agent = Guid.NewGuid().ToString();
        var token = (await RequestTokenAsync("alice", "wonderland-pw", HashedToken.Sha256EndPoint, agent)).Attr("token")!;
        var last = await LoginWithTokenAsync("alice", token, HashedToken.Sha256EndPoint, agent, invalidate: true);
        Assert.That(last.Is("success", Ns.Sasl2), last.ToString());
        Assert.That(last.Child("token", Ns.Fast), Is.Null, "§3.6: no new token unless asked for");
        var after = await LoginWithTokenAsync("alice", token, HashedToken.Sha256EndPoint, agent);
        Assert.That(after.Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
    }

    [Test]
    public async Task A_password_change_ends_every_token_of_the_account()
    {
        await _server.AddUserAsync("dave", "first-password");
        var agent = Guid.NewGuid().ToString();
        var token = (await RequestTokenAsync("dave", "first-password", HashedToken.Sha256None, agent)).Attr("token")!;
        Assert.That((await LoginWithTokenAsync("dave", token, HashedToken.Sha256None, agent)).Is("success", Ns.Sasl2));
        await _server.Get<AccountService>().ChangePasswordAsync("dave", "second-password");
        var failure = await LoginWithTokenAsync("dave", token, HashedToken.Sha256None, agent);
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.NotAuthorized), failure.ToString());
    }

    // AccountService keeps the SCRAM keys of accounts that logged in lately: a change must never leave the old ones usable.
    [Test]
    public async Task After_a_password_change_or_a_new_account_of_the_same_name_only_the_new_password_logs_in()
    {
        async Task<Element> LoginAsync(string user, string password)
        {
            await using var c = await TestClient.OpenAsync(_server);
            return (await c.ScramAsync(user, password, "SCRAM-SHA-256")).Item1;
        }
        var accounts = _server.Get<AccountService>();
        await _server.AddUserAsync("erin", "first-password");
        Assert.That((await LoginAsync("erin", "first-password")).Is("success", Ns.Sasl2));

        await accounts.ChangePasswordAsync("erin", "second-password");
        Assert.That((await LoginAsync("erin", "first-password")).Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That((await LoginAsync("erin", "second-password")).Is("success", Ns.Sasl2));

        await accounts.DeleteAsync("erin");
        Assert.That((await LoginAsync("erin", "second-password")).Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        await accounts.CreateAsync("erin", "third-password");
        Assert.That((await LoginAsync("erin", "second-password")).Condition(), Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That((await LoginAsync("erin", "third-password")).Is("success", Ns.Sasl2));
    }

    [Test]
    public async Task Requesting_a_token_for_a_mechanism_not_offered_fails()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (failure, _) = await c.ScramAsync("alice", "wonderland-pw", "SCRAM-SHA-256",
            extend: a => a.Add(Sasl2Login.RequestToken(HashedToken.Sha256Unique)));
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.InvalidMechanism), failure.ToString());
    }

    [Test]
    public async Task Requesting_a_token_without_a_user_agent_is_malformed()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (failure, _) = await c.ScramAsync("alice", "wonderland-pw", "SCRAM-SHA-256",
            extend: a => a.Add(Sasl2Login.RequestToken(HashedToken.Sha256None)), userAgent: null);
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.MalformedRequest), failure.ToString());
    }

    [TestCase("-1")]
    [TestCase("many")]
    [TestCase("99999999999999999999999")]
    public async Task A_count_that_is_not_a_number_is_malformed(string count)
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.SendAsync(Sasl2Login.Authenticate(HashedToken.Sha256None, HashedToken.BuildInitial("alice", "x"u8, []))
            .Add(new Element("fast", Ns.Fast).SetAttr("count", count)));
        var failure = await c.ReadElementAsync();
        Assert.That(failure.Condition(), Is.EqualTo(SaslFailures.MalformedRequest), failure.ToString());
    }

    [Test]
    public async Task Tokens_survive_a_restart_and_the_database_does_not_hold_them()
    {
        var root = Path.Combine(Path.GetTempPath(), "xmpp-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string token;
            await using (var first = await TestServer.StartAsync(root))
            {
                await first.AddUserAsync("erin", "erin-password");
                token = (await RequestTokenAsync("erin", "erin-password", HashedToken.Sha256None, Agent, first)).Attr("token")!;
            }
            var stored = await TestServer.PostgresConnectionForAsync(root) is { } connection
                ? await PostgresTestDatabase.DumpAsync(connection)
                : await File.ReadAllBytesAsync(Directory.GetFiles(Path.Combine(root, "data"), "*.db").Single());
            Assert.That(System.Text.Encoding.ASCII.GetString(stored), Does.Not.Contain(token), "only a salt is stored, never the token");
            await using var second = await TestServer.StartAsync(root);
            Assert.That((await LoginWithTokenAsync("erin", token, HashedToken.Sha256None, Agent, server: second)).Is("success", Ns.Sasl2));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
