using System.Text.Json;
using System.Xml.Linq;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// XEP-0484 FAST with xmpp.js 0.14: its first login asks for a token, a later process (same XEP-0388 user-agent id,
/// the token kept in a file) logs in with HT-SHA-256-NONE and the token alone, and a token the server refuses sends
/// xmpp.js back to its password, asking for a new token on the way.
[TestFixture]
public sealed class XmppJsFastInteropTests
{
    private const string Body = "hello from the browser";
    private const string Answer = "hello from tcp";
    private const string TokenMechanism = "HT-SHA-256-NONE";

    private string _dir = null!;
    private string _tokenFile = null!;
    private string _agent = null!;
    private TestServer? _server;
    private TestClient? _juliet;

    [SetUp]
    public void CreateTokenFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppjs-fast-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _tokenFile = Path.Combine(_dir, "token.json");
        _agent = Guid.NewGuid().ToString();
    }

    [TearDown]
    public async Task StopAndDeleteTokenFolder()
    {
        if (_juliet is not null) await _juliet.DisposeAsync();
        if (_server is not null) await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    /// A server with romeo (the xmpp.js side) and juliet online over TCP to chat with.
    private async Task<(TestServer Server, TestClient Juliet)> StartAsync(ManualClock? clock = null)
    {
        var server = _server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:Ping:IdleSeconds"] = "0"; // a clock jump must not make the peer look idle
        }, services: clock is null ? null : s => s.AddSingleton<TimeProvider>(clock));
        await server.AddUserAsync("romeo", "pw-romeo");
        await server.AddUserAsync("juliet", "pw-juliet");
        _juliet = await TestClient.ConnectAsync(server, "juliet", "pw-juliet", "phone", sendPresence: true);
        return (server, _juliet);
    }

    private ClientProcess Run(TestServer server, string password, string transport = "websocket", bool drop = false) =>
        XmppJs.Start(transport == "tcp" ? XmppJs.TcpService(server) : XmppJs.WebSocketService(server), server,
            "romeo", password, "juliet@localhost/phone", Body, Answer, _agent, _tokenFile, drop);

    private string StoredToken() => JsonDocument.Parse(File.ReadAllText(_tokenFile)).RootElement.GetProperty("token").GetString()!;

    private void StoreToken(string token, DateTimeOffset expiry) => File.WriteAllText(_tokenFile, JsonSerializer.Serialize(
        new { mechanism = TokenMechanism, token, expiry = expiry.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'") }));

    /// Logs in with the password, asking for a token, and checks the token reached the file.
    private async Task<string> FirstLoginAsync(TestServer server, TestClient juliet, string transport = "websocket")
    {
        using var js = Run(server, "pw-romeo", transport);
        await XmppJs.ChatAsync(js, juliet, Body, Answer);
        var authenticate = XmppJs.Authentications(js).Single();
        Assert.That(authenticate.Attribute("mechanism")?.Value, Is.EqualTo("SCRAM-SHA-1"));
        Assert.That(authenticate.Element(XmppJs.Fast + "request-token")?.Attribute("mechanism")?.Value, Is.EqualTo(TokenMechanism), js.Describe());
        var issued = XmppJs.Received(js).Single(e => e.Name == XmppJs.Sasl2 + "success").Element(XmppJs.Fast + "token");
        Assert.That(issued, Is.Not.Null, js.Describe());
        Assert.That(js.EventsNamed("token-saved"), Has.Count.EqualTo(1), js.Describe());
        Assert.That(StoredToken(), Is.EqualTo(issued!.Attribute("token")!.Value));
        return StoredToken();
    }

    private static XElement? FailureCondition(ClientProcess js) =>
        XmppJs.Received(js).FirstOrDefault(e => e.Name == XmppJs.Sasl2 + "failure")?.Elements().FirstOrDefault();

    [TestCase("websocket")]
    [TestCase("tcp")]
    public async Task A_second_process_logs_in_with_the_fast_token_alone_and_binds_in_the_same_round_trip(string transport)
    {
        var (server, juliet) = await StartAsync();
        var token = await FirstLoginAsync(server, juliet, transport);

        // A wrong password: only the token can log this process in.
        using var js = Run(server, "not-the-password", transport);
        var jid = await XmppJs.ChatAsync(js, juliet, Body, Answer);
        Assert.That(jid, Does.StartWith("romeo@localhost/xmppjs/"));
        var authenticate = XmppJs.Authentications(js).Single();
        Assert.That(authenticate.Attribute("mechanism")?.Value, Is.EqualTo(TokenMechanism), js.Describe());
        Assert.That(authenticate.Element(XmppJs.Fast + "fast"), Is.Not.Null, "XEP-0484 §3.4: a token login says so");
        Assert.That(authenticate.Element(XmppJs.Bind2 + "bind"), Is.Not.Null);
        var success = XmppJs.Received(js).Single(e => e.Name == XmppJs.Sasl2 + "success");
        // The server proved it knows the token too; xmpp.js checked that additional data or it would have failed.
        Assert.That(success.Element(XmppJs.Sasl2 + "additional-data"), Is.Not.Null, success.ToString());
        Assert.That(success.Element(XmppJs.Sasl2 + "authorization-identifier")?.Value, Is.EqualTo(jid));
        Assert.That(StoredToken(), Is.EqualTo(token), "a fresh token is not rotated");
    }

    [TestCase("websocket")]
    [TestCase("tcp")]
    public async Task After_a_lost_connection_xmppjs_resumes_its_session_inside_sasl2_with_its_fast_token(string transport)
    {
        var (server, juliet) = await StartAsync();
        using var js = Run(server, "pw-romeo", transport, drop: true);
        var jid = ClientProcess.Text(await js.WaitForEventAsync("online", within: TimeSpan.FromSeconds(40)), "jid")!;
        await js.WaitForEventAsync("dropped");
        // Sent while xmpp.js is away (or to the dead connection before the server notices): XEP-0198 keeps it.
        await juliet.SendAsync($"<message to='{jid}' type='chat'><body>{Answer}</body></message>");
        var resumed = await js.WaitForEventAsync("resumed", within: TimeSpan.FromSeconds(40));
        Assert.That(ClientProcess.Text(resumed, "jid"), Is.EqualTo(jid));
        await js.WaitForEventAsync("received", within: TimeSpan.FromSeconds(30));
        await js.WaitForExitAsync();
        Assert.That(js.ExitCode, Is.EqualTo(0), js.Describe());
        Assert.That(js.EventsNamed("online"), Has.Count.EqualTo(1), "a resumed session does not go online anew");
        var got = await juliet.ReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(30));
        Assert.That(got.ChildText("body", Xmpp.Protocol.Ns.Client), Is.EqualTo(Body));

        // The second login: the token from the first (asked for there), and <resume/> inside <authenticate/>.
        var attempts = XmppJs.Authentications(js);
        Assert.That(attempts.Select(a => a.Attribute("mechanism")?.Value), Is.EqualTo(new[] { "SCRAM-SHA-1", TokenMechanism }), js.Describe());
        var successes = XmppJs.Received(js).Where(e => e.Name == XmppJs.Sasl2 + "success").ToArray();
        var id = successes[0].Element(XmppJs.Bind2 + "bound")?.Element(XmppJs.Sm + "enabled")?.Attribute("id")?.Value;
        Assert.That(id, Is.Not.Null, successes[0].ToString());
        Assert.That(attempts[1].Element(XmppJs.Sm + "resume")?.Attribute("previd")?.Value, Is.EqualTo(id), js.Describe());
        Assert.That(successes[1].Element(XmppJs.Sm + "resumed")?.Attribute("previd")?.Value, Is.EqualTo(id), successes[1].ToString());
        Assert.That(successes[1].Element(XmppJs.Bind2 + "bound"), Is.Null, "XEP-0386 §3.2: a resumed session is not bound again");
        Assert.That(successes[1].Element(XmppJs.Sasl2 + "authorization-identifier")?.Value, Is.EqualTo(jid));
    }

    [Test]
    public async Task A_wrong_token_is_refused_and_xmppjs_falls_back_to_its_password_and_gets_a_new_token()
    {
        var (server, juliet) = await StartAsync();
        StoreToken("bm90IGEgdG9rZW4gdGhpcyBzZXJ2ZXIgZXZlciBpc3N1ZWQ=", DateTimeOffset.UtcNow.AddDays(7));

        using var js = Run(server, "pw-romeo");
        await XmppJs.ChatAsync(js, juliet, Body, Answer);
        var attempts = XmppJs.Authentications(js);
        Assert.That(attempts.Select(a => a.Attribute("mechanism")?.Value), Is.EqualTo(new[] { TokenMechanism, "SCRAM-SHA-1" }), js.Describe());
        Assert.That(FailureCondition(js)?.Name.LocalName, Is.EqualTo("not-authorized"), js.Describe());
        Assert.That(attempts[1].Element(XmppJs.Fast + "request-token")?.Attribute("mechanism")?.Value, Is.EqualTo(TokenMechanism));
        Assert.That(js.EventsNamed("token-deleted"), Has.Count.EqualTo(1));
        Assert.That(StoredToken(), Is.Not.EqualTo("bm90IGEgdG9rZW4gdGhpcyBzZXJ2ZXIgZXZlciBpc3N1ZWQ="), "the new token replaced it");
    }

    [Test]
    public async Task A_token_the_server_finds_expired_fails_with_credentials_expired_and_xmppjs_logs_in_with_its_password()
    {
        var clock = new ManualClock();
        var (server, juliet) = await StartAsync(clock);
        var token = await FirstLoginAsync(server, juliet);
        // xmpp.js still holds the token as valid by its own clock: only the server knows it ran out.
        clock.Advance(TimeSpan.FromDays(15));

        using var js = Run(server, "pw-romeo");
        await XmppJs.ChatAsync(js, juliet, Body, Answer);
        Assert.That(XmppJs.Authentications(js).Select(a => a.Attribute("mechanism")?.Value),
            Is.EqualTo(new[] { TokenMechanism, "SCRAM-SHA-1" }), js.Describe());
        Assert.That(FailureCondition(js)?.Name.LocalName, Is.EqualTo("credentials-expired"), js.Describe());
        Assert.That(StoredToken(), Is.Not.EqualTo(token));
    }

    [Test]
    public async Task With_a_wrong_token_and_a_wrong_password_xmppjs_fails_cleanly_with_not_authorized()
    {
        var (server, juliet) = await StartAsync();
        StoreToken("YW5vdGhlciB0b2tlbiB0aGF0IHdhcyBuZXZlciBpc3N1ZWQ=", DateTimeOffset.UtcNow.AddDays(7));

        using var js = Run(server, "not-the-password");
        var failure = await js.WaitForEventAsync("failure", within: TimeSpan.FromSeconds(40));
        Assert.That(ClientProcess.Text(failure, "reason"), Is.EqualTo("not-authorized"), js.Describe());
        await js.WaitForExitAsync();
        Assert.That(js.ExitCode, Is.EqualTo(2), js.Describe());
        Assert.That(js.EventsNamed("online"), Is.Empty);
        Assert.That(XmppJs.Authentications(js), Has.Count.EqualTo(2), "the token, then the password; no third try");
        Assert.That(File.Exists(_tokenFile), Is.False, "the refused token was dropped");
        Assert.That(await juliet.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null);
    }
}
