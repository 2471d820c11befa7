using System.Formats.Asn1;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Tls;

namespace Xmpp.Tests.Server;

public class CertificateManagerTests
{
    private const string XmppAddrOid = "1.3.6.1.5.5.7.8.5";
    private string _root = null!;
    private string _dir = null!;
    private ListLogger _log = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "xmpp-certs-" + Guid.NewGuid().ToString("N"));
        _dir = Path.Combine(_root, "certs");
        Directory.CreateDirectory(_dir);
        _log = new ListLogger();
    }

    [TearDown]
    public void TearDown()
    {
        foreach (var file in Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories))
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Directory.Delete(_root, recursive: true);
    }

    // ---- self-signed generation ----

    [Test]
    public void Generate_self_signed_writes_the_chain_and_a_private_key_only_the_owner_can_read()
    {
        using var certificate = CertificateManager.GenerateSelfSigned("example.test", _dir);

        var chainPath = Path.Combine(_dir, "example.test", "fullchain.pem");
        var keyPath = Path.Combine(_dir, "example.test", "privkey.pem");
        Assert.That(File.Exists(chainPath), Is.True);
        Assert.That(File.Exists(keyPath), Is.True);
        Assert.That(File.ReadAllText(keyPath), Does.Contain("-----BEGIN PRIVATE KEY-----"));
        Assert.That(certificate.HasPrivateKey, Is.True);
        Assert.That(Directory.GetFiles(Path.Combine(_dir, "example.test"), "*.tmp"), Is.Empty);
        if (!OperatingSystem.IsWindows())
            Assert.That(File.GetUnixFileMode(keyPath), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [Test]
    public void Generated_certificate_names_the_domain_its_subdomains_and_its_xmpp_address()
    {
        using var certificate = CertificateManager.GenerateSelfSigned("example.test", _dir);

        var (dns, xmppAddrs) = DecodeSubjectAltName(certificate);
        Assert.That(dns, Is.EquivalentTo(new[] { "example.test", "*.example.test" }));
        Assert.That(xmppAddrs, Is.EqualTo(new[] { "example.test" }));
        Assert.That(certificate.Extensions["2.5.29.17"]!.Critical, Is.False);
    }

    [Test]
    public void Generated_certificate_is_an_ecdsa_p256_sha256_end_entity_certificate_for_825_days()
    {
        using var certificate = CertificateManager.GenerateSelfSigned("example.test", _dir);

        Assert.That(certificate.Subject, Is.EqualTo("CN=example.test"));
        Assert.That(certificate.SignatureAlgorithm.Value, Is.EqualTo("1.2.840.10045.4.3.2"), "ecdsa-with-SHA256");
        using (var key = certificate.GetECDsaPublicKey()!)
            Assert.That(key.ExportParameters(false).Curve.Oid.Value, Is.EqualTo("1.2.840.10045.3.1.7"), "P-256");
        Assert.That(certificate.NotBefore.ToUniversalTime(), Is.EqualTo(DateTime.UtcNow.AddDays(-1)).Within(TimeSpan.FromMinutes(5)));
        Assert.That(certificate.NotAfter - certificate.NotBefore, Is.EqualTo(TimeSpan.FromDays(825)).Within(TimeSpan.FromSeconds(2)));

        var basic = certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.That(basic.CertificateAuthority, Is.False);
        var usage = certificate.Extensions.OfType<X509KeyUsageExtension>().Single();
        Assert.That(usage.KeyUsages, Is.EqualTo(X509KeyUsageFlags.DigitalSignature));
        var eku = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.That(eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value), Is.EquivalentTo(new[] { "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2" }));
    }

    [Test]
    public void Generated_certificate_for_an_internationalised_domain_uses_a_labels_for_dns_and_unicode_for_xmpp()
    {
        using var certificate = CertificateManager.GenerateSelfSigned("bücher.test", _dir);

        var (dns, xmppAddrs) = DecodeSubjectAltName(certificate);
        Assert.That(dns, Is.EquivalentTo(new[] { "xn--bcher-kva.test", "*.xn--bcher-kva.test" }));
        Assert.That(xmppAddrs, Is.EqualTo(new[] { "bücher.test" }));
        Assert.That(File.Exists(Path.Combine(_dir, "xn--bcher-kva.test", "fullchain.pem")), Is.True);
    }

    // ---- LoadAll ----

    [Test]
    public void LoadAll_generates_a_missing_certificate_and_warns_that_clients_must_accept_it()
    {
        using var manager = new CertificateManager(_dir, ["example.test"], _log);
        manager.LoadAll();

        var chainPath = Path.Combine(_dir, "example.test", "fullchain.pem");
        Assert.That(File.Exists(chainPath), Is.True);
        Assert.That(manager.GetCertificate("example.test").Subject, Is.EqualTo("CN=example.test"));
        var warning = _log.Entries.Single(e => e.Level == LogLevel.Warning && e.Message.Contains("self-signed"));
        Assert.That(warning.Message, Does.Contain(chainPath).And.Contain("accept"));
    }

    [Test]
    public void LoadAll_loads_the_generated_certificate_again_on_the_next_start()
    {
        string first;
        using (var manager = new CertificateManager(_dir, ["example.test"], _log))
        {
            manager.LoadAll();
            first = manager.GetCertificate("example.test").Thumbprint;
        }
        using (var manager = new CertificateManager(_dir, ["example.test"], _log))
        {
            manager.LoadAll();
            Assert.That(manager.GetCertificate("example.test").Thumbprint, Is.EqualTo(first));
        }
        Assert.That(_log.Entries.Count(e => e.Message.Contains("was generated")), Is.EqualTo(1));
    }

    [Test]
    public void LoadAll_without_generation_and_without_certificates_fails()
    {
        using var manager = new CertificateManager(_dir, ["example.test"], _log, generateSelfSigned: false);

        var error = Assert.Throws<InvalidOperationException>(manager.LoadAll);
        Assert.That(error!.Message, Does.Contain("No TLS certificate"));
        Assert.That(Directory.Exists(Path.Combine(_dir, "example.test")), Is.False);
    }

    [Test]
    public void LoadAll_refuses_a_key_that_does_not_match_instead_of_replacing_the_certificate()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"]);
        using var other = MakeCertificate("example.test", ["example.test"]);
        InstallPem(Path.Combine(_dir, "example.test", "fullchain.pem"), Path.Combine(_dir, "example.test", "privkey.pem"), certificate, keyFrom: other);

        using var manager = new CertificateManager(_dir, ["example.test"], _log);
        var error = Assert.Throws<InvalidOperationException>(manager.LoadAll);
        Assert.That(error!.Message, Does.Contain("does not match"));
        Assert.That(File.ReadAllText(Path.Combine(_dir, "example.test", "fullchain.pem")), Is.EqualTo(certificate.ExportCertificatePem() + "\n"));
    }

    [Test]
    public void A_wildcard_certificate_of_one_domain_serves_its_subdomain_without_generating_one()
    {
        using var certificate = MakeCertificate("example.test", ["example.test", "*.example.test"]);
        InstallPem(Path.Combine(_dir, "example.test", "fullchain.pem"), Path.Combine(_dir, "example.test", "privkey.pem"), certificate);

        using var manager = new CertificateManager(_dir, ["example.test", "conference.example.test"], _log);
        manager.LoadAll();

        Assert.That(manager.GetCertificate("conference.example.test").Thumbprint, Is.EqualTo(certificate.Thumbprint));
        Assert.That(Directory.Exists(Path.Combine(_dir, "conference.example.test")), Is.False);
        Assert.That(manager.Check(), Is.EqualTo(new[]
        {
            $"example.test: warning: certificate {Path.Combine(_dir, "example.test", "fullchain.pem")} is self-signed; clients will need to accept it",
        }));
    }

    [Test]
    public async Task LoadAll_again_picks_up_a_renewed_certificate_for_new_handshakes()
    {
        using var first = MakeCertificate("example.test", ["example.test"]);
        using var renewed = MakeCertificate("example.test", ["example.test"]);
        var chainPath = Path.Combine(_dir, "example.test", "fullchain.pem");
        var keyPath = Path.Combine(_dir, "example.test", "privkey.pem");
        InstallPem(chainPath, keyPath, first);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);
        manager.LoadAll();
        var selector = manager.CreateServerOptionsSelector(["xmpp-client"]);
        var before = await HandshakeAsync((ssl, ct) => ssl.AuthenticateAsServerAsync(selector, null, ct), "example.test");

        InstallPem(chainPath, keyPath, renewed);
        manager.LoadAll();
        var after = await HandshakeAsync((ssl, ct) => ssl.AuthenticateAsServerAsync(selector, null, ct), "example.test");

        Assert.That(before.Thumbprint, Is.EqualTo(first.Thumbprint));
        Assert.That(after.Thumbprint, Is.EqualTo(renewed.Thumbprint));
        Assert.That(manager.CreateServerOptionsSelector(["xmpp-client"]), Is.SameAs(selector));
    }

    [Test]
    public void GetCertificate_before_LoadAll_says_what_is_missing()
    {
        using var manager = new CertificateManager(_dir, ["example.test"], _log);
        Assert.That(() => manager.GetCertificate("example.test"), Throws.InvalidOperationException.With.Message.Contains("LoadAll"));
    }

    // ---- file layouts ----

    [TestCase("domain-directory", false)]
    [TestCase("domain-directory", true)]
    [TestCase("certbot-symlinks", false)]
    [TestCase("pem-and-key", false)]
    [TestCase("crt-and-key", true)]
    [TestCase("crt-and-traditional-rsa-key", true)]
    [TestCase("combined-pem", false)]
    [TestCase("shared-top-level", false)]
    [TestCase("encrypted-key", false)]
    public async Task Certificates_are_loaded_from_each_supported_layout_and_serve_a_handshake(string layout, bool rsa)
    {
        const string domain = "example.test";
        using var ca = MakeCertificate("Test Root", [], isCa: true);
        using var intermediate = MakeCertificate("Test Intermediate", [], issuer: ca, isCa: true);
        using var leaf = MakeCertificate(domain, [domain, "other.test"], issuer: intermediate, rsa: rsa);
        string? password = null;
        switch (layout)
        {
            case "domain-directory":
                InstallPem(Path.Combine(_dir, domain, "fullchain.pem"), Path.Combine(_dir, domain, "privkey.pem"), leaf, intermediate);
                break;
            case "certbot-symlinks":
                // certbot: certs/D -> live/D, live/D/fullchain.pem -> ../../archive/D/fullchain1.pem
                InstallPem(Path.Combine(_root, "archive", domain, "fullchain1.pem"), Path.Combine(_root, "archive", domain, "privkey1.pem"), leaf, intermediate);
                Directory.CreateDirectory(Path.Combine(_root, "live", domain));
                File.CreateSymbolicLink(Path.Combine(_root, "live", domain, "fullchain.pem"), $"../../archive/{domain}/fullchain1.pem");
                File.CreateSymbolicLink(Path.Combine(_root, "live", domain, "privkey.pem"), $"../../archive/{domain}/privkey1.pem");
                Directory.CreateSymbolicLink(Path.Combine(_dir, domain), Path.Combine(_root, "live", domain));
                break;
            case "pem-and-key":
                InstallPem(Path.Combine(_dir, domain + ".pem"), Path.Combine(_dir, domain + ".key"), leaf, intermediate);
                break;
            case "crt-and-key":
                InstallPem(Path.Combine(_dir, domain + ".crt"), Path.Combine(_dir, domain + ".key"), leaf, intermediate);
                break;
            case "crt-and-traditional-rsa-key":
                InstallPem(Path.Combine(_dir, domain + ".crt"), null, leaf, intermediate);
                using (var key = leaf.GetRSAPrivateKey()!)
                    File.WriteAllText(Path.Combine(_dir, domain + ".key"), key.ExportRSAPrivateKeyPem());
                break;
            case "combined-pem":
                InstallPem(Path.Combine(_dir, domain + ".pem"), Path.Combine(_dir, domain + ".pem"), leaf, intermediate);
                break;
            case "shared-top-level":
                InstallPem(Path.Combine(_dir, "fullchain.pem"), Path.Combine(_dir, "privkey.pem"), leaf, intermediate);
                break;
            case "encrypted-key":
                password = "correct horse";
                InstallPem(Path.Combine(_dir, domain, "fullchain.pem"), null, leaf, intermediate);
                using (var key = leaf.GetECDsaPrivateKey()!)
                    File.WriteAllText(Path.Combine(_dir, domain, "privkey.pem"), key.ExportEncryptedPkcs8PrivateKeyPem(password,
                        new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 100_000)));
                break;
        }

        using var manager = new CertificateManager(_dir, [domain], _log, generateSelfSigned: false) { Password = password };
        manager.LoadAll();

        var served = manager.GetCertificate(domain);
        Assert.That(served.Thumbprint, Is.EqualTo(leaf.Thumbprint));
        Assert.That(served.HasPrivateKey, Is.True);
        var result = await HandshakeAsync((ssl, ct) => ssl.AuthenticateAsServerAsync(manager.CreateServerOptions(), ct), domain);
        Assert.That(result.Thumbprint, Is.EqualTo(leaf.Thumbprint));
        Assert.That(result.SentCertificates, Does.Contain(intermediate.Subject), "the intermediate from the file is sent");
        Assert.That(manager.Check().Where(l => !l.Contains("warning:")), Is.Empty);
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("pfx secret")]
    public async Task Pfx_files_load_without_a_password_or_with_the_password_from_the_environment(string? password)
    {
        const string domain = "example.test";
        using var ca = MakeCertificate("Test Root", [], isCa: true);
        using var intermediate = MakeCertificate("Test Intermediate", [], issuer: ca, isCa: true);
        using var leaf = MakeCertificate(domain, [domain], issuer: intermediate);
        var collection = new X509Certificate2Collection { leaf, X509CertificateLoader.LoadCertificate(intermediate.RawData) };
        File.WriteAllBytes(Path.Combine(_dir, domain + ".pfx"), collection.Export(X509ContentType.Pkcs12, password)!);

        var saved = Environment.GetEnvironmentVariable(CertificateManager.PasswordVariable);
        Environment.SetEnvironmentVariable(CertificateManager.PasswordVariable, password);
        try
        {
            using var manager = new CertificateManager(_dir, [domain], _log, generateSelfSigned: false);
            manager.LoadAll();

            Assert.That(manager.GetCertificate(domain).Thumbprint, Is.EqualTo(leaf.Thumbprint));
            var result = await HandshakeAsync((ssl, ct) => ssl.AuthenticateAsServerAsync(manager.CreateServerOptions(), ct), domain);
            Assert.That(result.Thumbprint, Is.EqualTo(leaf.Thumbprint));
            Assert.That(result.SentCertificates, Does.Contain(intermediate.Subject));
        }
        finally
        {
            Environment.SetEnvironmentVariable(CertificateManager.PasswordVariable, saved);
        }
    }

    [Test]
    public void A_pfx_with_a_password_that_is_not_configured_is_reported()
    {
        using var leaf = MakeCertificate("example.test", ["example.test"]);
        File.WriteAllBytes(Path.Combine(_dir, "example.test.pfx"), leaf.Export(X509ContentType.Pkcs12, "secret"));

        using var manager = new CertificateManager(_dir, ["example.test"], _log) { Password = null };
        Assert.That(manager.LoadAll, Throws.InvalidOperationException.With.Message.Contains(CertificateManager.PasswordVariable));
        Assert.That(manager.Check(), Has.One.Contains("example.test.pfx").And.Contains(CertificateManager.PasswordVariable));
    }

    // ---- SNI, ALPN and protocol versions over real sockets ----

    [TestCase("a.test", "CN=a.test", false)]
    [TestCase("b.test", "CN=b.test", false)]
    [TestCase("B.Test.", "CN=b.test", false)]
    [TestCase("upload.b.test", "CN=b.test", false)]
    [TestCase("unknown.example", "CN=a.test", true)]
    [TestCase("", "CN=a.test", true)]
    public async Task The_certificate_is_chosen_by_the_sni_name_and_alpn_xmpp_client_is_negotiated(string sni, string subject, bool mismatch)
    {
        using var manager = new CertificateManager(_dir, ["a.test", "b.test"], _log);
        manager.LoadAll();
        string[] alpn = ["xmpp-client"];

        foreach (var selector in new[] { false, true })
        {
            var result = await HandshakeAsync(
                (ssl, ct) => selector
                    ? ssl.AuthenticateAsServerAsync(manager.CreateServerOptionsSelector(alpn), null, ct)
                    : ssl.AuthenticateAsServerAsync(manager.CreateServerOptions(alpn), ct),
                sni, clientAlpn: alpn);

            Assert.That(result.Subject, Is.EqualTo(subject), selector ? "selector" : "options");
            Assert.That(result.ClientAlpn, Is.EqualTo("xmpp-client"));
            Assert.That(result.ServerAlpn, Is.EqualTo("xmpp-client"));
            Assert.That(result.Errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch), Is.EqualTo(mismatch));
        }
    }

    [Test]
    public async Task The_selector_sends_each_certificates_own_intermediates_when_several_are_loaded()
    {
        using var ca = MakeCertificate("Test Root", [], isCa: true);
        using var interA = MakeCertificate("Intermediate A", [], issuer: ca, isCa: true);
        using var interB = MakeCertificate("Intermediate B", [], issuer: ca, isCa: true);
        using var leafA = MakeCertificate("a.test", ["a.test"], issuer: interA);
        using var leafB = MakeCertificate("b.test", ["b.test"], issuer: interB);
        InstallPem(Path.Combine(_dir, "a.test", "fullchain.pem"), Path.Combine(_dir, "a.test", "privkey.pem"), leafA, interA);
        InstallPem(Path.Combine(_dir, "b.test.crt"), Path.Combine(_dir, "b.test.key"), leafB, interB);
        using var manager = new CertificateManager(_dir, ["a.test", "b.test"], _log, generateSelfSigned: false);
        manager.LoadAll();

        var a = await HandshakeAsync((ssl, ct) => ssl.AuthenticateAsServerAsync(manager.CreateServerOptionsSelector(), null, ct), "a.test");
        var b = await HandshakeAsync((ssl, ct) => ssl.AuthenticateAsServerAsync(manager.CreateServerOptionsSelector(), null, ct), "b.test");

        Assert.That(a.SentCertificates, Is.EquivalentTo(new[] { "CN=a.test", "CN=Intermediate A" }));
        Assert.That(b.SentCertificates, Is.EquivalentTo(new[] { "CN=b.test", "CN=Intermediate B" }));
    }

    [TestCase(SslProtocols.Tls12)]
    [TestCase(SslProtocols.Tls13)]
    [TestCase(SslProtocols.None)]
    public async Task Tls_1_2_and_1_3_are_accepted(SslProtocols client)
    {
        using var manager = new CertificateManager(_dir, ["a.test"], _log);
        manager.LoadAll();

        var result = await HandshakeAsync((ssl, ct) => ssl.AuthenticateAsServerAsync(manager.CreateServerOptions(), ct), "a.test", clientProtocols: client);

        Assert.That(result.Protocol, Is.EqualTo(client == SslProtocols.None ? SslProtocols.Tls13 : client));
    }

    [TestCase(0x01)]
    [TestCase(0x02)]
    public async Task A_client_offering_at_most_tls_1_0_or_1_1_is_refused_with_a_protocol_version_alert(int minorVersion)
    {
        using var manager = new CertificateManager(_dir, ["a.test"], _log);
        manager.LoadAll();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var server = Task.Run(async () =>
            {
                using var socket = await listener.AcceptTcpClientAsync(cts.Token);
                await using var ssl = new SslStream(socket.GetStream());
                await ssl.AuthenticateAsServerAsync(manager.CreateServerOptions(), cts.Token);
            });
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, cts.Token);
            var stream = client.GetStream();
            // Crafted by hand: the local TLS library may refuse to even send a TLS 1.1 hello, which would say
            // nothing about the server.
            await stream.WriteAsync(LegacyClientHello("a.test", (byte)minorVersion), cts.Token);

            var reply = new byte[7];
            int read = 0;
            while (read < reply.Length)
            {
                int n = await stream.ReadAsync(reply.AsMemory(read), cts.Token);
                if (n == 0) break;
                read += n;
            }
            Assert.That(read, Is.EqualTo(7), "a complete alert record");
            Assert.That(reply[0], Is.EqualTo(0x15), "alert record");
            Assert.That(reply[5], Is.EqualTo(2), "fatal");
            Assert.That(reply[6], Is.EqualTo(70), "protocol_version (RFC 8446 §6.2)");
            Assert.That(async () => await server, Throws.InstanceOf<AuthenticationException>().Or.InstanceOf<IOException>());
        }
        finally
        {
            listener.Stop();
        }
    }

    [TestCase("*.example.test", "conference.example.test", true)]
    [TestCase("*.example.test", "example.test", false)]
    [TestCase("*.example.test", "a.b.example.test", false)]
    [TestCase("*.example.test", "conference.example.test.evil", false)]
    [TestCase("example.test", "example.test", true)]
    [TestCase("example.test", "upload.example.test", false)]
    public void Wildcards_cover_exactly_one_left_most_label(string pattern, string host, bool covered)
    {
        Assert.That(DnsNames.Matches(pattern, host), Is.EqualTo(covered));
    }

    // ---- Check ----

    [Test]
    public void Check_reports_an_expired_certificate()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"], notBefore: DateTimeOffset.UtcNow.AddDays(-100), notAfter: DateTimeOffset.UtcNow.AddDays(-10));
        InstallPem(Path.Combine(_dir, "example.test", "fullchain.pem"), Path.Combine(_dir, "example.test", "privkey.pem"), certificate);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.StartsWith("example.test: certificate").And.Contains("expired on"));
        manager.LoadAll();
        Assert.That(_log.Entries, Has.One.Matches<(LogLevel Level, string Message)>(e => e.Level == LogLevel.Warning && e.Message.Contains("expired")));
    }

    [Test]
    public void Check_reports_a_certificate_that_is_not_yet_valid()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"], notBefore: DateTimeOffset.UtcNow.AddDays(3), notAfter: DateTimeOffset.UtcNow.AddDays(90));
        InstallPem(Path.Combine(_dir, "example.test.crt"), Path.Combine(_dir, "example.test.key"), certificate);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.Contains("is not valid until"));
    }

    [Test]
    public void Check_warns_about_a_certificate_expiring_within_two_weeks()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"], notAfter: DateTimeOffset.UtcNow.AddDays(5).AddHours(-1));
        InstallPem(Path.Combine(_dir, "example.test.pem"), Path.Combine(_dir, "example.test.key"), certificate);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.StartsWith("example.test: warning: certificate").And.Contains("expires in 5 day(s)"));
    }

    [Test]
    public void Check_reports_a_key_that_does_not_match_the_certificate()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"]);
        using var other = MakeCertificate("example.test", ["example.test"]);
        InstallPem(Path.Combine(_dir, "example.test", "fullchain.pem"), Path.Combine(_dir, "example.test", "privkey.pem"), certificate, keyFrom: other);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.Contains("privkey.pem does not match certificate CN=example.test"));
    }

    [Test]
    public void Check_reports_an_rsa_key_given_for_an_ecdsa_certificate()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"]);
        using var rsa = MakeCertificate("example.test", ["example.test"], rsa: true);
        InstallPem(Path.Combine(_dir, "example.test.crt"), Path.Combine(_dir, "example.test.key"), certificate, keyFrom: rsa);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.Contains("example.test.key cannot be read as a key for this ECDSA certificate"));
    }

    [Test]
    public void Check_reports_a_missing_key()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"]);
        InstallPem(Path.Combine(_dir, "example.test", "fullchain.pem"), null, certificate);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.Contains("privkey.pem is missing"));
    }

    [Test]
    public void Check_reports_a_certificate_that_does_not_cover_the_domain()
    {
        using var certificate = MakeCertificate("other.test", ["other.test", "*.example.test"]);
        InstallPem(Path.Combine(_dir, "example.test.pem"), Path.Combine(_dir, "example.test.key"), certificate);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.EqualTo(
            $"example.test: certificate {Path.Combine(_dir, "example.test.pem")} does not cover example.test (it names other.test, *.example.test)"));
    }

    [Test]
    public void Check_reports_a_missing_certificate_and_where_it_looked()
    {
        using var manager = new CertificateManager(_dir, ["example.test"], _log, generateSelfSigned: false);

        var line = manager.Check().Single();
        Assert.That(line, Does.StartWith("example.test: no certificate found").And.Contain("example.test/fullchain.pem").And.Contain("example.test.pfx"));
    }

    [Test]
    public void Check_reports_a_file_that_is_not_a_certificate()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "example.test"));
        File.WriteAllText(Path.Combine(_dir, "example.test", "fullchain.pem"), "<html>404</html>");
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.StartsWith("example.test: cannot parse").And.Contains("no PEM CERTIFICATE"));
    }

    [Test]
    public void Check_reports_an_unreadable_key_file()
    {
        Assume.That(!OperatingSystem.IsWindows() && Environment.UserName != "root", "root reads files whatever their mode");
        using var certificate = MakeCertificate("example.test", ["example.test"]);
        var keyPath = Path.Combine(_dir, "example.test", "privkey.pem");
        InstallPem(Path.Combine(_dir, "example.test", "fullchain.pem"), keyPath, certificate);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(keyPath, UnixFileMode.None);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.StartsWith("example.test: cannot read private key"));
    }

    [Test]
    public void Check_reports_a_key_path_that_cannot_be_read_as_a_file()
    {
        using var certificate = MakeCertificate("example.test", ["example.test"]);
        InstallPem(Path.Combine(_dir, "example.test.crt"), null, certificate);
        Directory.CreateDirectory(Path.Combine(_dir, "example.test.key"));
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.StartsWith("example.test: cannot read private key").And.Contains("example.test.key"));
        Assert.That(manager.LoadAll, Throws.InvalidOperationException.With.Message.Contains("cannot read private key"));
    }

    [Test]
    public void Check_warns_when_the_intermediate_certificate_is_missing()
    {
        using var ca = MakeCertificate("Test Root", [], isCa: true);
        using var leaf = MakeCertificate("example.test", ["example.test"], issuer: ca);
        InstallPem(Path.Combine(_dir, "example.test.crt"), Path.Combine(_dir, "example.test.key"), leaf);
        using var manager = new CertificateManager(_dir, ["example.test"], _log);

        Assert.That(manager.Check(), Has.One.Contains("warning:").And.Contains("without its intermediate (CN=Test Root)"));
    }

    [Test]
    public void Check_finds_nothing_wrong_with_a_generated_certificate_except_that_it_is_self_signed()
    {
        using var manager = new CertificateManager(_dir, ["example.test"], _log);
        manager.LoadAll();

        Assert.That(manager.Check(), Is.EqualTo(new[]
        {
            $"example.test: warning: certificate {Path.Combine(_dir, "example.test", "fullchain.pem")} is self-signed; clients will need to accept it",
        }));
    }

    // ---- helpers ----

    private static (List<string> Dns, List<string> XmppAddrs) DecodeSubjectAltName(X509Certificate2 certificate)
    {
        var dns = new List<string>();
        var xmppAddrs = new List<string>();
        var dnsTag = new Asn1Tag(TagClass.ContextSpecific, 2);
        var otherNameTag = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
        var names = new AsnReader(certificate.Extensions["2.5.29.17"]!.RawData, AsnEncodingRules.DER).ReadSequence();
        while (names.HasData)
        {
            var tag = names.PeekTag();
            if (tag == dnsTag)
            {
                dns.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, dnsTag));
            }
            else if (tag == otherNameTag)
            {
                var otherName = names.ReadSequence(otherNameTag);
                var typeId = otherName.ReadObjectIdentifier();
                var value = otherName.ReadSequence(otherNameTag);
                otherName.ThrowIfNotEmpty();
                Assert.That(typeId, Is.EqualTo(XmppAddrOid));
                xmppAddrs.Add(value.ReadCharacterString(UniversalTagNumber.UTF8String));
                value.ThrowIfNotEmpty();
            }
            else
            {
                Assert.Fail($"unexpected GeneralName {tag}");
            }
        }
        return (dns, xmppAddrs);
    }

    private static X509Certificate2 MakeCertificate(string commonName, string[] dnsNames, X509Certificate2? issuer = null, bool isCa = false,
        bool rsa = false, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using AsymmetricAlgorithm key = rsa ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = key is RSA r
            ? new CertificateRequest("CN=" + commonName, r, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest("CN=" + commonName, (ECDsa)key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(isCa, false, 0, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (dnsNames.Length > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var name in dnsNames) san.AddDnsName(name);
            request.CertificateExtensions.Add(san.Build());
        }
        var from = notBefore ?? DateTimeOffset.UtcNow.AddDays(-1);
        var until = notAfter ?? DateTimeOffset.UtcNow.AddDays(60);
        if (issuer is null) return request.CreateSelfSigned(from, until);
        // A generator rather than Create(issuer, ...), which refuses an issuer with a different key algorithm.
        using var issuerKey = (AsymmetricAlgorithm?)issuer.GetECDsaPrivateKey() ?? issuer.GetRSAPrivateKey()!;
        var generator = issuerKey is ECDsa ecdsaIssuer
            ? X509SignatureGenerator.CreateForECDsa(ecdsaIssuer)
            : X509SignatureGenerator.CreateForRSA((RSA)issuerKey, RSASignaturePadding.Pkcs1);
        using var signed = request.Create(issuer.SubjectName, generator, from, until, RandomNumberGenerator.GetBytes(12));
        return key is RSA rsaKey ? signed.CopyWithPrivateKey(rsaKey) : signed.CopyWithPrivateKey((ECDsa)key);
    }

    /// Writes the leaf and then the chain as PEM, and the key of keyFrom (default: the leaf) as PKCS#8.
    private static void InstallPem(string certificatePath, string? keyPath, X509Certificate2 leaf, X509Certificate2? intermediate = null, X509Certificate2? keyFrom = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(certificatePath)!);
        var pem = leaf.ExportCertificatePem() + "\n" + (intermediate is null ? "" : intermediate.ExportCertificatePem() + "\n");
        if (keyPath is null)
        {
            File.WriteAllText(certificatePath, pem);
            return;
        }
        using var key = (AsymmetricAlgorithm?)(keyFrom ?? leaf).GetECDsaPrivateKey() ?? (keyFrom ?? leaf).GetRSAPrivateKey()!;
        var keyPem = key.ExportPkcs8PrivateKeyPem() + "\n";
        if (keyPath == certificatePath)
        {
            File.WriteAllText(certificatePath, pem + keyPem);
        }
        else
        {
            File.WriteAllText(certificatePath, pem);
            File.WriteAllText(keyPath, keyPem);
        }
    }

    private sealed record Handshake(string Subject, string Thumbprint, SslPolicyErrors Errors, string ClientAlpn, string ServerAlpn, SslProtocols Protocol, List<string> SentCertificates);

    private static async Task<Handshake> HandshakeAsync(Func<SslStream, CancellationToken, Task> authenticateServer, string targetHost,
        string[]? clientAlpn = null, SslProtocols clientProtocols = SslProtocols.None)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var server = Task.Run(async () =>
            {
                using var socket = await listener.AcceptTcpClientAsync(cts.Token);
                await using var ssl = new SslStream(socket.GetStream());
                await authenticateServer(ssl, cts.Token);
                await ssl.WriteAsync(new byte[] { 1 }, cts.Token);
                return ssl.NegotiatedApplicationProtocol.ToString();
            });
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, cts.Token);
            await using var ssl = new SslStream(client.GetStream());
            X509Certificate2? remote = null;
            var errors = SslPolicyErrors.None;
            var sent = new List<string>();
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = targetHost,
                EnabledSslProtocols = clientProtocols,
                ApplicationProtocols = clientAlpn?.Select(p => new SslApplicationProtocol(p)).ToList(),
                RemoteCertificateValidationCallback = (_, certificate, chain, policyErrors) =>
                {
                    remote = X509CertificateLoader.LoadCertificate(certificate!.GetRawCertData());
                    errors = policyErrors;
                    // The certificates the server sent arrive in the chain's extra store.
                    sent.AddRange(chain!.ChainPolicy.ExtraStore.Select(c => c.Subject));
                    return true;
                },
            }, cts.Token);
            var oneByte = new byte[1];
            await ssl.ReadExactlyAsync(oneByte, cts.Token);
            var serverAlpn = await server;
            using (remote)
                return new Handshake(remote!.Subject, remote.Thumbprint, errors, ssl.NegotiatedApplicationProtocol.ToString(), serverAlpn, ssl.SslProtocol, sent);
        }
        finally
        {
            listener.Stop();
        }
    }

    /// A ClientHello whose highest version is TLS 1.0 (minor 1) or 1.1 (minor 2), RFC 4346 §7.4.1.2.
    private static byte[] LegacyClientHello(string serverName, byte minorVersion)
    {
        var body = new List<byte> { 3, minorVersion };
        body.AddRange(RandomNumberGenerator.GetBytes(32));
        body.Add(0); // no session id
        byte[] suites = [0xC0, 0x09, 0xC0, 0x13, 0xC0, 0x0A, 0xC0, 0x14, 0x00, 0x2F, 0x00, 0x35];
        body.AddRange(U16(suites.Length)); body.AddRange(suites);
        body.AddRange([1, 0]); // null compression only
        var name = System.Text.Encoding.ASCII.GetBytes(serverName);
        var extensions = new List<byte>();
        extensions.AddRange([0x00, 0x00]); extensions.AddRange(U16(name.Length + 5)); extensions.AddRange(U16(name.Length + 3));
        extensions.Add(0); extensions.AddRange(U16(name.Length)); extensions.AddRange(name);
        extensions.AddRange([0x00, 0x0A, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]); // supported_groups: secp256r1
        extensions.AddRange([0x00, 0x0B, 0x00, 0x02, 0x01, 0x00]); // ec_point_formats: uncompressed
        body.AddRange(U16(extensions.Count)); body.AddRange(extensions);
        var handshake = new List<byte> { 1, 0 };
        handshake.AddRange(U16(body.Count)); handshake.AddRange(body);
        var record = new List<byte> { 0x16, 3, 1 };
        record.AddRange(U16(handshake.Count)); record.AddRange(handshake);
        return record.ToArray();

        static byte[] U16(int value) => [(byte)(value >> 8), (byte)value];
    }

    private sealed class ListLogger : ILogger<CertificateManager>
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }
}
