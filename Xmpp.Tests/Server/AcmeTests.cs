using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Tls.Acme;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The ACME client (RFC 8555) against a private Pebble with real http-01 validation: Pebble resolves every name to
/// 127.0.0.1 through its own DNS stand-in and fetches the challenge from the server's plain-HTTP listener.
[TestFixture]
[Category("Certificates")]
public sealed class AcmeTests
{
    private string _root = null!;

    [SetUp]
    public void MakeDir()
    {
        _root = Path.Combine(Path.GetTempPath(), "xmpp-acme-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_root);
    }

    [TearDown]
    public void RemoveDir() => Directory.Delete(_root, recursive: true);

    [Test]
    public async Task The_server_obtains_a_certificate_for_the_domain_and_its_service_subdomains_and_renews_it_near_expiry_without_a_restart()
    {
        await using var pebble = await PebbleInstance.StartAsync(certificateValidity: TimeSpan.FromDays(1));
        using var root = await pebble.RootAsync();
        var clock = new ManualClock();
        var certs = Path.Combine(_root, "certs");
        await using var server = await TestServer.StartAsync(_root, o =>
        {
            o["Xmpp:Domains:0"] = "acme.test";
            o["Xmpp:CertDir"] = certs;
            TestServer.WithHttp(o);
            o["Xmpp:Acme:Enabled"] = "true";
            o["Xmpp:Acme:DirectoryUrl"] = pebble.DirectoryUrl;
            o["Xmpp:Acme:CaCertificateFile"] = pebble.ListenerCaFile;
            o["Xmpp:Acme:AcceptTermsOfService"] = "true";
            o["Xmpp:Acme:Email"] = "admin@acme.test";
            o["Xmpp:Acme:Http01Port"] = pebble.HttpChallengePort.ToString();
            // Pebble issues for one day: renewed once less than half a day is left, checked every second.
            o["Xmpp:Acme:RenewDaysBeforeExpiry"] = "0.5";
            o["Xmpp:Acme:CheckIntervalSeconds"] = "1";
            o["Xmpp:Ping:IdleSeconds"] = "0"; // the clock's jump must not make the client look idle
        }, services => services.AddSingleton<TimeProvider>(clock));
        var names = AcmeService.NamesFor(server.Options, "acme.test");
        Assert.That(names, Is.SupersetOf(new[] { "acme.test", "conference.acme.test", "upload.acme.test" }));

        // At start the domain has a self-signed certificate; the ACME client replaces it.
        Served? first = null;
        Assert.That(await Wait.UntilAsync(async () => (first = await ServedAsync(server, "acme.test", root)).Trusted, TimeSpan.FromSeconds(60)),
            Is.True, pebble.Output);
        var issued = first!.Certificate;
        foreach (var name in names)
        {
            var served = await ServedAsync(server, name, root);
            Assert.That(served.Trusted && served.NameMatches, Is.True, $"{name}: a certificate from Pebble's CA naming it");
            Assert.That(served.Certificate.SerialNumber, Is.EqualTo(issued.SerialNumber), "one certificate for all the names");
        }
        var keyFile = Path.Combine(certs, "acme.test", "privkey.pem");
        var accountKey = Directory.GetFiles(Path.Combine(_root, "data", "acme"), "*-account.key").Single();
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(File.GetUnixFileMode(keyFile), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(File.GetUnixFileMode(accountKey), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }

        // Only the challenge is served over plain HTTP.
        using (var http = new HttpClient())
        {
            using var metrics = await http.GetAsync($"http://127.0.0.1:{pebble.HttpChallengePort}/metrics");
            Assert.That((int)metrics.StatusCode, Is.EqualTo(404));
        }

        // A client connected now stays connected through the renewal.
        await server.AddUserAsync("alice", "alice-password");
        await using var alice = await TestClient.ConnectAsync(new ServerEndpoint(server.Host, server.C2sPort, server.C2sTlsPort, "acme.test"),
            "alice", "alice-password", "pc");

        // Nothing is due yet: the next checks keep the certificate.
        await Task.Delay(2500);
        Assert.That((await ServedAsync(server, "acme.test", root)).Certificate.SerialNumber, Is.EqualTo(issued.SerialNumber));

        // Fourteen hours later, less than half a day is left: renewed, and the new one is served.
        clock.Advance(TimeSpan.FromHours(14));
        X509Certificate2? renewed = null;
        Assert.That(await Wait.UntilAsync(async () => (renewed = (await ServedAsync(server, "acme.test", root)).Certificate).SerialNumber != issued.SerialNumber,
            TimeSpan.FromSeconds(60)), Is.True, pebble.Output);
        var after = await ServedAsync(server, "upload.acme.test", root);
        Assert.That(after.Trusted && after.NameMatches, Is.True);
        Assert.That(after.Certificate.SerialNumber, Is.EqualTo(renewed!.SerialNumber));
        var pong = await alice.IqAsync("<iq type='get' to='acme.test'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
    }

    /// RFC 8737: Pebble connects to the direct TLS port offering only acme-tls/1; the server answers with the challenge
    /// certificate there, and every other client on that port still gets the real one.
    [Test]
    public async Task With_tls_alpn_01_the_challenge_is_answered_on_the_direct_tls_port_in_front_of_the_xmpp_handshake()
    {
        await using var pebble = await PebbleInstance.StartAsync(certificateValidity: TimeSpan.FromDays(1));
        using var root = await pebble.RootAsync();
        await using var server = await TestServer.StartAsync(_root, o =>
        {
            o["Xmpp:Domains:0"] = "acme.test";
            o["Xmpp:CertDir"] = Path.Combine(_root, "certs");
            o["Xmpp:C2sTlsPort"] = pebble.TlsChallengePort.ToString();
            o["Xmpp:Acme:Enabled"] = "true";
            o["Xmpp:Acme:Challenge"] = "tls-alpn-01";
            o["Xmpp:Acme:DirectoryUrl"] = pebble.DirectoryUrl;
            o["Xmpp:Acme:CaCertificateFile"] = pebble.ListenerCaFile;
            o["Xmpp:Acme:AcceptTermsOfService"] = "true";
        });
        Assert.That(await Wait.UntilAsync(async () => (await ServedAsync(server, "acme.test", root)).Trusted, TimeSpan.FromSeconds(60)),
            Is.True, pebble.Output);
        var conference = await ServedAsync(server, "conference.acme.test", root);
        Assert.That(conference.Trusted && conference.NameMatches, Is.True);
        // No challenge pending: direct TLS clients log in as ever.
        await server.AddUserAsync("alice", "alice-password");
        await using var alice = await TestClient.ConnectAsync(new ServerEndpoint(server.Host, server.C2sPort, server.C2sTlsPort, "acme.test"),
            "alice", "alice-password", "pc", tls: TlsMode.Direct);
        Assert.That((await alice.IqAsync("<iq type='get' to='acme.test'><ping xmlns='urn:xmpp:ping'/></iq>")).Attr("type"), Is.EqualTo("result"));
    }

    private sealed record Served(X509Certificate2 Certificate, bool Trusted, bool NameMatches);

    /// A direct TLS handshake with SNI name: the certificate the server sent, whether it chains to Pebble's root with
    /// the intermediates the server sent, and whether it names the host.
    private static async Task<Served> ServedAsync(TestServer server, string name, X509Certificate2 root)
    {
        bool trusted = false, matches = false;
        X509Certificate2? leaf = null;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.C2sTlsPort);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = name,
            ApplicationProtocols = [new SslApplicationProtocol("xmpp-client")],
            RemoteCertificateValidationCallback = (_, certificate, sent, errors) =>
            {
                leaf = new X509Certificate2(certificate!);
                matches = (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(root);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                if (sent is not null) chain.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
                trusted = chain.Build(leaf);
                return true;
            },
        });
        return new Served(leaf!, trusted, matches);
    }
}
