using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Invites;
using Xmpp.Tests.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The security review of issue 20 (docs/security.md): uploads cannot run script in our origin, upload URLs cannot
/// leave the upload folder, secrets are compared in constant time and never logged, and the data folder and the keys
/// the server generates are its owner's alone.
[TestFixture]
[Category("Security")]
public sealed partial class SecurityReviewTests
{
    // ---- Uploads served from our origin (XEP-0363 §4 leaves it to the service) ----

    [TestCase("page.html", "text/html", "<html><script>alert(1)</script></html>")]
    [TestCase("image.svg", "image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")]
    [TestCase("data.xml", "application/xml", "<a><script xmlns='http://www.w3.org/1999/xhtml'>alert(1)</script></a>")]
    [TestCase("page.xhtml", "application/xhtml+xml", "<html xmlns='http://www.w3.org/1999/xhtml'><script>alert(1)</script></html>")]
    public async Task Html_svg_and_xml_uploads_are_downloaded_sandboxed_and_never_sniffed(string name, string type, string content)
    {
        await using var server = await UploadModuleTests.Server();
        await using var romeo = await UploadModuleTests.Connect(server);
        using var http = UploadClient.Http(server);
        var bytes = Encoding.UTF8.GetBytes(content);
        var (put, get) = await UploadClient.SlotAsync(romeo, server, name, bytes.Length, type);
        using (var up = await UploadClient.PutAsync(http, put, bytes, type)) Assert.That(up.StatusCode, Is.EqualTo(HttpStatusCode.Created));

        using var response = await http.GetAsync(get);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentDisposition?.DispositionType, Is.EqualTo("attachment"));
        Assert.That(response.Headers.GetValues("X-Content-Type-Options").Single(), Is.EqualTo("nosniff"));
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.That(csp, Does.Contain("sandbox"));
        Assert.That(csp, Does.Contain("default-src 'none'"));
    }

    [TestCase("/upload/../upload.key")]
    [TestCase("/upload/..%2Fupload.key/x")]
    [TestCase("/upload/%2e%2e/upload.key")]
    [TestCase("/upload/%2e%2e%2f%2e%2e%2fxmpp.db/x")]
    [TestCase("/upload/..\\upload.key/x")]
    [TestCase("/upload//etc/passwd")]
    [TestCase("/upload/tmp/x")]
    public async Task Upload_paths_that_try_to_leave_the_upload_folder_are_not_found(string path)
    {
        await using var server = await UploadModuleTests.Server();
        // Raw bytes on the wire: an HTTP client library would normalize the dot segments before we could send them.
        var (status, body) = await RawGetAsync(server, path);
        Assert.That(status, Is.EqualTo(404), body);
        var key = await File.ReadAllBytesAsync(Path.Combine(server.DataDir, "upload.key"));
        Assert.That(body, Does.Not.Contain(Convert.ToBase64String(key)));
    }

    private static async Task<(int Status, string Body)> RawGetAsync(TestServer server, string path)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, server.HttpPort);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        await ssl.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        var all = new MemoryStream();
        try { await ssl.CopyToAsync(all).WaitAsync(TimeSpan.FromSeconds(10)); }
        catch (IOException) { }
        var text = Encoding.Latin1.GetString(all.ToArray());
        var match = Regex.Match(text, @"^HTTP/1\.1 (\d{3})");
        Assert.That(match.Success, text);
        return (int.Parse(match.Groups[1].Value), text);
    }

    // ---- Files and folders the server creates ----

    [Test]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task A_new_data_folder_and_the_generated_keys_are_the_owners_alone()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("Unix file modes");
        await using var server = await UploadModuleTests.Server();
        // The FAST key is made on first use (XEP-0484 token request), the upload key at start.
        await server.Get<Xmpp.Server.Auth.FastTokenService>().IssueAsync("romeo", "ua-1", "HT-SHA-256-NONE");
        const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.That(File.GetUnixFileMode(server.DataDir), Is.EqualTo(ownerOnly | UnixFileMode.UserExecute));
        foreach (var key in new[] { "upload.key", "fast-token.key" })
            Assert.That(File.GetUnixFileMode(Path.Combine(server.DataDir, key)), Is.EqualTo(ownerOnly), key);
    }

    // ---- Secrets in logs ----

    private sealed class CapturingLogger(ConcurrentQueue<string> lines, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{category} {logLevel}: {formatter(state, exception)} {exception}");
    }

    private sealed class CapturingProvider : ILoggerProvider
    {
        public ConcurrentQueue<string> Lines { get; } = new();
        public ILogger CreateLogger(string categoryName) => new CapturingLogger(Lines, categoryName);
        public void Dispose() { }
    }

    [Test]
    public async Task Passwords_and_tokens_never_reach_the_log_even_at_trace_level()
    {
        var capture = new CapturingProvider();
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Logging:LogLevel:Default"] = "Trace";
            o["Xmpp:Registration:AllowRegistration"] = "true";
            o["Xmpp:Registration:MinSecondsBetweenPerIp"] = "1";
        }, services: s => s.AddSingleton<ILoggerProvider>(capture));
        const string alicePassword = "Alice-Secret-Pw-8431";
        await server.AddUserAsync("alice", alicePassword);

        // Logins: SCRAM, PLAIN, and a wrong password.
        await using (var scram = await TestClient.ConnectAsync(server, "alice", alicePassword, "a")) { }
        await using (var plain = await TestClient.ConnectAsync(server, "alice", alicePassword, "b", mechanism: "PLAIN")) { }
        const string wrongPassword = "Wrong-Guess-Pw-5527";
        await using (var c = await TestClient.OpenAsync(server))
            Assert.That((await c.TryAuthenticateAsync("alice", wrongPassword, "PLAIN")).Name, Is.EqualTo("failure"));

        // In-band registration, then a password change.
        const string carolPassword = "Carol-Secret-Pw-9902";
        await using (var c = await TestClient.OpenAsync(server))
        {
            await c.SendRawAsync($"<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>carol</username><password>{carolPassword}</password></query></iq>");
            Assert.That((await c.ReadElementAsync()).Attr("type"), Is.EqualTo("result"));
        }
        const string changedPassword = "Changed-Secret-Pw-3317";
        await using (var carol = await TestClient.ConnectAsync(server, "carol", carolPassword, "pc"))
        {
            var changed = await carol.IqAsync($"<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><username>carol</username><password>{changedPassword}</password></query></iq>");
            Assert.That(changed.Attr("type"), Is.EqualTo("result"), changed.ToString());
        }

        // An invitation: its token registers a new account (XEP-0401).
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", "alice@localhost", TimeSpan.FromDays(1));
        const string davePassword = "Dave-Secret-Pw-7741";
        await using (var c = await TestClient.OpenAsync(server))
        {
            await c.SendRawAsync($"<iq type='set' id='pa' to='localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>");
            Assert.That((await c.ReadElementAsync()).Attr("type"), Is.EqualTo("result"));
            await c.SendRawAsync($"<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>dave</username><password>{davePassword}</password></query></iq>");
            Assert.That((await c.ReadElementAsync()).Attr("type"), Is.EqualTo("result"));
        }
        // A FAST token (XEP-0484) handed out.
        var fast = await server.Get<Xmpp.Server.Auth.FastTokenService>().IssueAsync("alice", "ua-1", "HT-SHA-256-NONE");

        await server.StopAsync();
        var log = string.Join("\n", capture.Lines);
        Assert.That(capture.Lines.Count, Is.GreaterThan(20), "trace logging reached the capture");
        foreach (var secret in new[] { alicePassword, wrongPassword, carolPassword, changedPassword, davePassword, token, fast.Token })
        {
            Assert.That(log, Does.Not.Contain(secret), $"a secret ({secret[..4]}...) is in the log");
            // Base64 of the PLAIN message would carry it too.
            Assert.That(log, Does.Not.Contain(Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0" + secret))));
        }
    }
    // ---- Constant-time comparison of secrets ----

    // Comparisons that name a secret-like identifier and are not secrets compared with a guess: two fields a user
    // typed (new password and its repetition), lengths, enum results, an algorithm name, the PROXY protocol's fixed
    // signature, and the registration tokens of cluster nodes: random ids of one lease generation, compared between
    // the cluster's own nodes over Redis to tell an old registration from a new one, not a credential anyone presents.
    private static readonly (string File, string Snippet)[] NotSecretComparisons =
    [
        ("ServiceAdminModule.cs", "f.Value(\"password-verify\") != password"),
        ("MucRoom.Owner.cs", "next.Password.Length == 0"),
        ("MucRoom.Join.cs", "affiliation != MucAffiliation.Owner && !PasswordMatches("),
        ("PasswordPage.cs", "TrimEnd('/') != \"/password\""),
        ("PasswordPage.cs", "next != next2"),
        ("InvitePages.cs", "password != repeated"),
        ("WebFormGuard.cs", "cookie.Length != 32"),
        ("InvitesModule.cs", "i.Inviter == owner.ToString()"),
        ("AccountService.cs", "k.Hash == name"),
        ("SaslAuthenticator.cs", "binding == HashedTokenBinding"),
        ("SaslAuthenticator.cs", "check == FastTokenService.Check"),
        ("SaslAuthenticator.cs", "check != FastTokenService.Check"),
        ("WebSocketHandler.cs", "MessageType == WebSocketMessageType.Close"),
        ("InviteCommand.cs", "options.HttpPort != 0"),
        ("ExternalServicesModule.cs", "service.Secret.Length == 0"),
        ("XmppStreamParser.Markup.cs", "Token.SequenceEqual(\"xml\"u8)"),
        ("ScramServer.cs", "proof.Length != ScramHashes.HashSize(hash)"),
        ("OptionsValidator.cs", "comp.Domains.Count == 0"),
        ("InviteStore.cs", "kind == InviteKind.Account"),
        ("ProxyHeaderParser.cs", "data[0] == V2Signature[0]"),
        ("ClusterSessionDirectory.Replica.cs", "node is null || token is null || node == _bus.LocalNode"),
        ("ClusterSessionDirectory.Replica.cs", "token != expectedToken"),
        ("ClusterSessionDirectory.Replica.cs", "replica.Token != token"),
        ("ClusterSessionDirectory.Replica.cs", "registration != _bus.Token"), // a lease token (public within the cluster): a session-close naming an earlier registration
        ("RedisNodeBus.Lease.cs", "(string?)await own != _token"),
        ("RedisNodeBus.Lease.cs", "old == token"),
        ("ClusterRoomHosting.cs", "redis.call('hget', KEYS[1], 'token') == ARGV[4]"),
        ("ClusterSessionDirectory.Replica.cs", "!alive.TryGetValue(node, out var token) || e.Attr(\"i\") != token"),
        ("RedisNodeBus.cs", "frame.Attr(\"d\") != outbox.Token"),
        ("RedisNodeBus.cs", "destination != _token"),
        ("RedisNodeBus.Order.cs", "destination != _token"), // a lease token (public within the cluster): frames sent to an earlier registration
        ("SocketStream.cs", "error == SocketError.WouldBlock"), // a socket error code next to a CancellationToken parameter, no secret
        // The registration that lists a temporary room (xmpp:muc-live): the same random lease tokens as above.
        ("ClusterRoomHosting.cs", "node == _bus.LocalNode && token == bus?.Token"),
        ("ClusterRoomHosting.cs", "node == _bus.LocalNode && token != bus?.Token"),
        ("ClusterRoomHosting.cs", "out current) == true && current != token"),
        ("ClusterRoomHosting.cs", "if (current == token) rooms.Add"),
        ("ClusterRoomHosting.cs", "summary?.Public == true ? (LiveRoomsKey"),
    ];

    [GeneratedRegex(@"(==|!=|\.SequenceEqual\(|string\.Equals\(|\.Equals\()")]
    private static partial Regex Comparison();

    [GeneratedRegex(@"(?i)\b\w*(token|secret|signature|proof|hmac|storedkey|serverkey|password|cookie)\w*\b")]
    private static partial Regex SecretName();

    [Test]
    public void Secrets_are_compared_only_in_constant_time()
    {
        // A source audit: every line of the server and protocol code that compares something named like a secret
        // (token, secret, signature, proof, HMAC, stored or server key, password, cookie) must do it with
        // CryptographicOperations.FixedTimeEquals, or be one of the known comparisons of things that are not secrets.
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "XmppServer.sln"))) root = root.Parent;
        Assert.That(root, Is.Not.Null, "the repository's sources");
        var found = new List<string>();
        int fixedTime = 0;
        foreach (var project in new[] { "Xmpp.Server", "Xmpp.Protocol" })
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root!.FullName, project), "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)) continue;
                var lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                {
                    var code = lines[i].Trim();
                    if (code.StartsWith("//", StringComparison.Ordinal)) continue;
                    var comment = code.IndexOf("//", StringComparison.Ordinal);
                    if (comment >= 0) code = code[..comment];
                    if (code.Contains("FixedTimeEquals", StringComparison.Ordinal)) { fixedTime++; continue; }
                    if (!Comparison().IsMatch(code) || !SecretName().IsMatch(code)) continue;
                    var name = Path.GetFileName(file);
                    if (NotSecretComparisons.Any(k => k.File == name && code.Contains(k.Snippet, StringComparison.Ordinal))) continue;
                    found.Add($"{name}:{i + 1}: {code}");
                }
            }
        Assert.That(found, Is.Empty, "compare secrets with CryptographicOperations.FixedTimeEquals");
        // SCRAM (proof, channel binding, PLAIN), FAST, upload PUT, dialback, invitations, forms, metrics, room passwords.
        Assert.That(fixedTime, Is.GreaterThanOrEqualTo(11));
    }
}
