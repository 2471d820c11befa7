using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// What the TLS layer offers and how it ends, checked with real TLS programs (OpenSSL's s_client, Python's ssl):
/// AEAD suites only with ChaCha20-Poly1305 among them (RFC 9325 §4.2), and a close_notify before the TCP close.
[TestFixture]
public sealed class TlsPolicyTests
{
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start() => _server = await TestServer.StartAsync();

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    /// Runs openssl s_client against the direct TLS port and returns its output; a handshake failure shows in it.
    private async Task<(int Exit, string Output)> SClientAsync(params string[] options)
    {
        var openssl = ClientProcess.RequireProgram("/usr/bin/openssl", "openssl");
        var args = new List<string> { "s_client", "-connect", $"{_server.Host}:{_server.C2sTlsPort}", "-servername", _server.Domain, "-brief" };
        args.AddRange(options);
        // An empty stdin makes s_client end right after the handshake.
        var p = await ClientProcess.RunAsync(openssl, args, TimeSpan.FromSeconds(15), stdin: "");
        return (p.ExitCode, string.Join("\n", p.StdoutLines) + "\n" + p.Stderr);
    }

    [TestCase("ECDHE-ECDSA-AES256-SHA384")]
    [TestCase("ECDHE-ECDSA-AES128-SHA256")]
    [TestCase("ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA")]
    [TestCase("ALL:!AESGCM:!CHACHA20:!AESCCM:!ARIA")]
    public async Task A_tls12_client_offering_only_cbc_suites_is_refused(string ciphers)
    {
        var (exit, output) = await SClientAsync("-tls1_2", "-cipher", ciphers);
        Assert.That(exit, Is.Not.Zero, output);
        Assert.That(output, Does.Not.Contain("Cipher is").And.Not.Contain("Ciphersuite:"), output);
    }

    [TestCase("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305", "CHACHA20")]
    [TestCase("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", "AES128-GCM")]
    [TestCase("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384", "AES256-GCM")]
    public async Task A_tls12_client_gets_the_aead_suite_it_can_use(string ciphers, string expected)
    {
        var (exit, output) = await SClientAsync("-tls1_2", "-cipher", ciphers);
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("Protocol version: TLSv1.2").And.Contain(expected), output);
    }

    [Test]
    public async Task A_tls13_client_that_only_has_chacha20_gets_it()
    {
        var (exit, output) = await SClientAsync("-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("Protocol version: TLSv1.3").And.Contain("TLS_CHACHA20_POLY1305_SHA256"), output);
    }

    [Test]
    public async Task Tls_1_1_is_refused()
    {
        var (exit, output) = await SClientAsync("-tls1_1", "-cipher", "ALL:@SECLEVEL=0");
        Assert.That(exit, Is.Not.Zero, output);
    }

    [TestCase("starttls")]
    [TestCase("direct")]
    public async Task A_closed_stream_ends_with_a_tls_close_notify(string mode)
    {
        ClientProcess.RequireProgram(ClientProcess.DebianPython, "python3");
        var port = mode == "direct" ? _server.C2sTlsPort : _server.C2sPort;
        var p = await ClientProcess.RunAsync(ClientProcess.DebianPython,
            [ClientProcess.ClientScript("tls_close_probe.py"), "--host", _server.Host, "--port", port.ToString(),
             "--domain", _server.Domain, "--mode", mode],
            TimeSpan.FromSeconds(20));
        var summary = $"exit {p.ExitCode}\n{string.Join("\n", p.StdoutLines)}\n{p.Stderr}";
        Assert.That(p.ExitCode, Is.Zero, "Python's ssl saw the TCP close without close_notify: " + summary);
        var done = p.Events.Single();
        Assert.That(done.GetProperty("event").GetString(), Is.EqualTo("clean-close"), summary);
        Assert.That(done.GetProperty("closing-tag").GetBoolean(), Is.True, "the server answered with its closing tag first: " + summary);
    }

    [Test]
    public async Task The_monitoring_plugin_check_xmppng_reports_ok()
    {
        // Debian's nagios-check-xmppng: it reported UNKNOWN for a server that closed TLS without close_notify.
        var plugin = ClientProcess.RequireProgram("/usr/lib/nagios/plugins/check_xmppng", "nagios-check-xmppng");
        var p = await ClientProcess.RunAsync(ClientProcess.DebianPython,
            [plugin, "--c2s", "--starttls", "-H", _server.Host, "-p", _server.C2sPort.ToString(), "--servername", _server.Domain,
             "--no-check-certificates"],
            TimeSpan.FromSeconds(20));
        var output = string.Join("\n", p.StdoutLines) + "\n" + p.Stderr;
        Assert.That(p.ExitCode, Is.Zero, output);
        Assert.That(output, Does.Contain("OK"), output);
    }
}
