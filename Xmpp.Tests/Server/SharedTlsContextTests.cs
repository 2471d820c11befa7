using Xmpp.Server.Tls;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// TLS session resumption for reconnecting clients (TLS 1.3 tickets, RFC 8446 §2.2; TLS 1.2 session ids or tickets),
/// which needs every connection to share the certificate's OpenSSL context (Xmpp.Server/Tls/SharedTlsContexts.cs),
/// checked with Python's ssl module as the client; the suites allowed on that shared context are held by TlsPolicyTests.
[TestFixture]
[Category("Tls")]
public sealed class SharedTlsContextTests
{
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start() => _server = await TestServer.StartAsync();

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    // Two connections with one SSLContext: the first reads the stream features (by then a TLS 1.3 server has sent its
    // tickets), the second offers the first's session. Prints "new", then "reused" or "full" for the second.
    private const string Reconnect = """
        import socket, ssl, sys
        host, port, domain, version, starttls = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
        header = ("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" % domain).encode()
        def read_until(s, marker):
            data = b""
            while marker not in data:
                chunk = s.recv(4096)
                if not chunk: raise SystemExit("closed early: %r" % data)
                data += chunk
        def connect(session):
            raw = socket.create_connection((host, port), timeout=10)
            if starttls:
                raw.sendall(header)
                read_until(raw, b"</stream:features>")
                raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                read_until(raw, b"<proceed")
            s = ctx.wrap_socket(raw, server_hostname=domain, session=session)
            s.sendall(header)
            read_until(s, b"</stream:features>")
            out = (s.session, s.session_reused, s.version())
            s.close()
            return out
        first, reused, v = connect(None)
        print("new" if not reused else "reused-first", v)
        second, reused, v = connect(first)
        print("reused" if reused else "full", v)
        """;

    private async Task<string> ReconnectAsync(string version, bool starttls)
    {
        ClientProcess.RequireProgram(ClientProcess.DebianPython, "python3");
        var p = await ClientProcess.RunAsync(ClientProcess.DebianPython,
            ["-c", Reconnect, _server.Host, (starttls ? _server.C2sPort : _server.C2sTlsPort).ToString(), _server.Domain, version, starttls ? "1" : "0"],
            TimeSpan.FromSeconds(30));
        var output = string.Join("\n", p.StdoutLines);
        Assert.That(p.ExitCode, Is.Zero, output + "\n" + p.Stderr);
        return output;
    }

    [TestCase("1.3", false)]
    [TestCase("1.3", true)]
    [TestCase("1.2", false)]
    [TestCase("1.2", true)]
    public async Task A_reconnecting_client_resumes_its_tls_session(string version, bool starttls)
    {
        var output = await ReconnectAsync(version, starttls);
        Assert.That(output, Does.Contain("new TLSv" + version).And.Contain("reused TLSv" + version), output);
    }

    [Test]
    public async Task Connections_of_one_certificate_share_one_openssl_context()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("OpenSSL is .NET's TLS only on Linux");
        await _server.AddUserAsync("carol", "carol-pw");
        await using var a = await TestClient.ConnectAsync(_server, "carol", "carol-pw", "a");
        await using var b = await TestClient.ConnectAsync(_server, "carol", "carol-pw", "b", TlsMode.Direct);
        await using var c = await TestClient.ConnectAsync(_server, "carol", "carol-pw", "c");
        await using var d = await TestClient.ConnectAsync(_server, "carol", "carol-pw", "d", TlsMode.Direct);
        var streams = _server.Get<Xmpp.Server.Streams.ConnectionTracker>().All.Where(s => s.TlsStream is not null).ToList();
        var contexts = streams.Select(s => SharedTlsContexts.ContextOf(s.TlsStream!)).ToList();
        Assert.That(streams.Select(s => SharedTlsContexts.IsResumed(s.TlsStream!)), Has.None.Null, "SSL_session_reused not readable");
        Assert.That(contexts, Has.Count.EqualTo(4));
        Assert.That(contexts, Has.None.EqualTo(IntPtr.Zero), "the SSL_CTX behind SslStream was not found: .NET changed its internals");
        // One for the STARTTLS connections (no ALPN) and one for direct TLS (ALPN): .NET keeps one of each per
        // certificate. A context per connection would make four.
        Assert.That(contexts.Distinct().Count(), Is.EqualTo(2));
        // One TLS 1.3 ticket per full handshake, not OpenSSL's default two (server CPU on every login).
        Assert.That(streams.Select(s => SharedTlsContexts.TicketsPerFullHandshake(s.TlsStream!)),
            Has.All.EqualTo(SharedTlsContexts.TicketsPerHandshake));
    }
}
