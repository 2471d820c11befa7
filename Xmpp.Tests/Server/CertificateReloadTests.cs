using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Certificates replaced while the server runs (issue 19 point 6): new files in certs/ as certbot lays them out
/// (a domain folder that is a symlink into live/, whose files are symlinks into archive/ and switched on renewal),
/// picked up without a restart by STARTTLS, direct TLS and HTTPS handshakes; connections already up stay up; files that
/// cannot be used leave the old certificate in place.
[TestFixture]
[Category("Certificates")]
public sealed class CertificateReloadTests
{
    private string _root = null!;
    private string _certs = null!;

    [SetUp]
    public void MakeDir()
    {
        _root = Path.Combine(Path.GetTempPath(), "xmpp-reload-" + Guid.NewGuid().ToString("N"));
        _certs = Path.Combine(_root, "certs");
        Directory.CreateDirectory(_certs);
    }

    [TearDown]
    public void RemoveDir() => Directory.Delete(_root, recursive: true);

    private Task<TestServer> Start(int rescanSeconds) => TestServer.StartAsync(_root, o =>
    {
        o["Xmpp:CertDir"] = _certs;
        o["Xmpp:CertificateRescanSeconds"] = rescanSeconds.ToString();
        TestServer.WithHttp(o);
    });

    [Test]
    public async Task Certbots_files_are_picked_up_by_new_handshakes_on_every_port_while_an_open_connection_keeps_working()
    {
        var first = Make("localhost", days: 60);
        WritePem(Path.Combine(_certs, "localhost"), "fullchain.pem", "privkey.pem", first);
        // Renewals inside live/ are outside the watched folder (certs/localhost is a symlink): the re-scan finds them.
        await using var server = await Start(rescanSeconds: 1);
        await using var client = await LoginAsync(server);
        Assert.That(client.Tls!.RemoteCertificate!.GetSerialNumberString(), Is.EqualTo(first.SerialNumber));

        // certbot certonly: archive/localhost/fullchain1.pem, live/localhost/fullchain.pem -> ../../archive/...; the operator
        // then replaces certs/localhost with a symlink to live/localhost.
        var second = Make("localhost", days: 90);
        var letsencrypt = Path.Combine(_root, "letsencrypt");
        CertbotIssue(letsencrypt, "localhost", 1, second);
        Directory.Move(Path.Combine(_certs, "localhost"), Path.Combine(_root, "old-localhost"));
        Directory.CreateSymbolicLink(Path.Combine(_certs, "localhost"), Path.Combine(letsencrypt, "live", "localhost"));
        Assert.That(await Wait.UntilAsync(async () => await DirectTlsSerialAsync(server) == second.SerialNumber, TimeSpan.FromSeconds(15)),
            Is.True, "a new direct TLS connection gets the new certificate");
        Assert.That(await HttpsSerialAsync(server), Is.EqualTo(second.SerialNumber));
        await using (var fresh = await LoginAsync(server))
            Assert.That(fresh.Tls!.RemoteCertificate!.GetSerialNumberString(), Is.EqualTo(second.SerialNumber), "STARTTLS too");

        // certbot renew: fullchain2.pem and privkey2.pem, and the live/ links switched to them.
        var third = Make("localhost", days: 90);
        CertbotIssue(letsencrypt, "localhost", 2, third);
        Assert.That(await Wait.UntilAsync(async () => await DirectTlsSerialAsync(server) == third.SerialNumber, TimeSpan.FromSeconds(15)),
            Is.True, "the renewal is picked up");

        // The first connection, made with the first certificate, is still up and served.
        var pong = await client.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task A_certificate_copied_in_is_used_at_once_and_a_mismatched_key_or_an_expired_certificate_leaves_the_old_one()
    {
        var first = Make("localhost", days: 60);
        var folder = Path.Combine(_certs, "localhost");
        WritePem(folder, "fullchain.pem", "privkey.pem", first);
        // No re-scan: the file system notifications alone must do.
        await using var server = await Start(rescanSeconds: 0);
        Assert.That(await DirectTlsSerialAsync(server), Is.EqualTo(first.SerialNumber));

        // A key that belongs to another certificate: refused, the old certificate stays.
        var other = Make("localhost", days: 60);
        var mismatched = Make("localhost", days: 60);
        File.WriteAllText(Path.Combine(folder, "fullchain.pem"), mismatched.ExportCertificatePem());
        File.WriteAllText(Path.Combine(folder, "privkey.pem"), other.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        await Task.Delay(1500);
        Assert.That(await DirectTlsSerialAsync(server), Is.EqualTo(first.SerialNumber));

        // An expired certificate with its own key: refused too.
        var expired = Make("localhost", days: -1);
        WritePem(folder, "fullchain.pem", "privkey.pem", expired);
        await Task.Delay(1500);
        Assert.That(await DirectTlsSerialAsync(server), Is.EqualTo(first.SerialNumber));

        // A good pair written the way cp and most tools do (in place): taken.
        var good = Make("localhost", days: 60);
        WritePem(folder, "fullchain.pem", "privkey.pem", good);
        Assert.That(await Wait.UntilAsync(async () => await DirectTlsSerialAsync(server) == good.SerialNumber, TimeSpan.FromSeconds(10)), Is.True);

        // A new file layout appearing (a domain.pem + domain.key pair for the MUC domain is not served; a renamed-in
        // fullchain is): written under another name and renamed over, as atomic installers do.
        var renamed = Make("localhost", days: 60);
        WritePem(Path.Combine(_root, "staging"), "fullchain.pem", "privkey.pem", renamed);
        File.Move(Path.Combine(_root, "staging", "privkey.pem"), Path.Combine(folder, "privkey.pem"), overwrite: true);
        File.Move(Path.Combine(_root, "staging", "fullchain.pem"), Path.Combine(folder, "fullchain.pem"), overwrite: true);
        Assert.That(await Wait.UntilAsync(async () => await DirectTlsSerialAsync(server) == renamed.SerialNumber, TimeSpan.FromSeconds(10)), Is.True);
    }

    /// SIGHUP reloads at once, for changes no notification reports (here: a folder symlinked from outside certs/,
    /// with the re-scan off), as a certbot deploy hook would send it. Run as a process: the signal goes to the server.
    [Test]
    [NonParallelizable]
    public async Task Sighup_reloads_the_certificates_and_does_not_stop_the_server()
    {
        var outside = Path.Combine(_root, "outside");
        WritePem(outside, "fullchain.pem", "privkey.pem", Make("localhost", days: 60));
        Directory.CreateSymbolicLink(Path.Combine(_certs, "localhost"), outside);
        int c2s = TestServer.FreePort(), tls = TestServer.FreePort();
        // With SIGHUP's default disposition: a run under nohup passes SIGHUP down ignored, and .NET keeps an ignored
        // SIGHUP ignored (as nohup asks). env execs the server, so its PID is the server's.
        await using var server = await ServerProcess.StartWrappedAsync(["env", "--default-signal=HUP"], _root, c2s,
            "--domain", "localhost", "--c2s-port", c2s.ToString(), "--c2s-tls-port", tls.ToString(), "--http-port", "0",
            "--data-dir", Path.Combine(_root, "data"), "--cert-dir", _certs, "--listen", "127.0.0.1", "--log-level", "Information",
            "--Xmpp:CertificateRescanSeconds", "0");
        var endpoint = new ServerEndpoint("127.0.0.1", c2s, tls);
        var renewed = Make("localhost", days: 60);
        WritePem(outside, "fullchain.pem", "privkey.pem", renewed);
        await Task.Delay(1000);
        Assert.That(await DirectTlsSerialAsync(endpoint), Is.Not.EqualTo(renewed.SerialNumber), "nothing told the server yet");
        using (var kill = System.Diagnostics.Process.Start("kill", ["-HUP", server.Pid.ToString()]))
            await kill.WaitForExitAsync();
        Assert.That(await Wait.UntilAsync(async () => await DirectTlsSerialAsync(endpoint) == renewed.SerialNumber, TimeSpan.FromSeconds(10)),
            Is.True, server.Output);
        Assert.That(server.HasExited, Is.False);
        Assert.That(server.Output, Does.Contain("SIGHUP"));
    }

    private static async Task<TestClient> LoginAsync(TestServer server)
    {
        if (await server.Get<Xmpp.Storage.IStorage>().Accounts.FindAsync("alice") is null) await server.AddUserAsync("alice", "alice-password");
        return await TestClient.ConnectAsync(server, "alice", "alice-password", "pc-" + Guid.NewGuid().ToString("N")[..6]);
    }

    private static async Task<string?> DirectTlsSerialAsync(ServerEndpoint server)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.C2sTlsPort);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ApplicationProtocols = [new SslApplicationProtocol("xmpp-client")],
        });
        return ((X509Certificate2)ssl.RemoteCertificate!).SerialNumber;
    }

    private static async Task<string?> HttpsSerialAsync(TestServer server)
    {
        string? serial = null;
        using var http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => { serial = new X509Certificate2(c!).SerialNumber; return true; } },
        });
        using var _ = await http.GetAsync($"https://localhost:{server.Options.HttpPort}/nothing-here");
        return serial;
    }

    private static X509Certificate2 Make(string domain, int days)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + domain, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(domain);
        request.CertificateExtensions.Add(san.Build());
        var until = DateTimeOffset.UtcNow.AddDays(days);
        return request.CreateSelfSigned(until.AddDays(-90), until);
    }

    private static void WritePem(string folder, string certificateName, string keyName, X509Certificate2 certificate)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, keyName), certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(folder, certificateName), certificate.ExportCertificatePem());
    }

    /// What certbot does on issue and renewal: new numbered files in archive/, then the live/ links moved to them.
    private static void CertbotIssue(string letsencrypt, string domain, int number, X509Certificate2 certificate)
    {
        var archive = Path.Combine(letsencrypt, "archive", domain);
        var live = Path.Combine(letsencrypt, "live", domain);
        WritePem(archive, $"fullchain{number}.pem", $"privkey{number}.pem", certificate);
        Directory.CreateDirectory(live);
        foreach (var name in new[] { "privkey", "fullchain" })
        {
            var link = Path.Combine(live, name + ".pem");
            var temp = link + ".new";
            File.CreateSymbolicLink(temp, $"../../archive/{domain}/{name}{number}.pem");
            File.Move(temp, link, overwrite: true);
        }
    }
}
