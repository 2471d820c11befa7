using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Server.Links.S2s;
using Xmpp.Tests.Support;
using PeerCertificateCheck = Xmpp.Server.Links.S2s.PeerCertificates;

namespace Xmpp.Tests.Server;

/// RFC 6125 identity checks and chain validation of a peer server's certificate (RFC 6120 §13.7.2, XEP-0178).
[TestFixture, Category("S2s")]
public sealed class S2sCertificateTests
{
    private TestCa _ca = null!;
    private string _caFile = null!;

    [OneTimeSetUp]
    public void Setup()
    {
        _ca = TestCa.Create();
        _caFile = Path.Combine(Path.GetTempPath(), "xmpp-s2s-ca-" + Guid.NewGuid().ToString("N") + ".pem");
        File.WriteAllText(_caFile, _ca.Certificate.ExportCertificatePem());
    }

    [OneTimeTearDown]
    public void Teardown()
    {
        _ca.Dispose();
        File.Delete(_caFile);
    }

    private PeerCertificateCheck Checker() => new(new S2sOptions { TrustedCaFile = _caFile });

    [TestCase("DNS", "example.org", "example.org", true)]
    [TestCase("DNS", "EXAMPLE.org", "example.org", true)]
    [TestCase("DNS", "*.example.org", "conference.example.org", true)]
    [TestCase("DNS", "*.example.org", "example.org", false)]          // a wildcard needs a label to stand for
    [TestCase("DNS", "*.example.org", "a.b.example.org", false)]      // and stands for exactly one
    [TestCase("DNS", "conf*.example.org", "conference.example.org", false)] // only a whole left-most label (RFC 6125 §6.4.3)
    [TestCase("DNS", "example.org.evil", "example.org", false)]
    [TestCase("XMPP", "example.org", "example.org", true)]
    [TestCase("XMPP", "user@example.org", "example.org", false)]
    [TestCase("SRV", "_xmpp-server.example.org", "example.org", true)]
    [TestCase("SRV", "_xmpps-server.example.org", "example.org", true)]
    [TestCase("SRV", "_xmpp-client.example.org", "example.org", false)] // an identity for the client service only
    [TestCase("SRV", "_xmpp-server.other.org", "example.org", false)]
    public void A_certificate_names_a_domain_only_through_a_matching_identity(string kind, string identity, string domain, bool expected)
    {
        using var certificate = _ca.IssueInMemory("unrelated.invalid",
            kind == "DNS" ? [identity] : [], kind == "XMPP" ? [identity] : [], kind == "SRV" ? [identity] : []);
        Assert.That(PeerCertificateCheck.Names(certificate, domain), Is.EqualTo(expected));
    }

    [Test]
    public void The_common_name_counts_only_when_there_is_no_subject_alternative_name()
    {
        using var cnOnly = _ca.IssueInMemory("example.org", [], [], []);
        Assert.That(PeerCertificateCheck.Names(cnOnly, "example.org"), Is.True);
        using var withSan = _ca.IssueInMemory("example.org", ["other.org"], [], []);
        Assert.That(PeerCertificateCheck.Names(withSan, "example.org"), Is.False);
    }

    [Test]
    public void A_certificate_from_a_trusted_ca_that_names_the_domain_is_accepted()
    {
        using var certificate = _ca.IssueInMemory("example.org", ["example.org"], [], []);
        Assert.That(Checker().Problem(certificate, null, "example.org"), Is.Null);
    }

    [Test]
    public void Each_reason_to_refuse_a_certificate_is_named()
    {
        using var wrongName = _ca.IssueInMemory("other.org", ["other.org"], [], []);
        Assert.That(Checker().Problem(wrongName, null, "example.org"), Does.Contain("does not name example.org"));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=example.org", key, HashAlgorithmName.SHA256);
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        Assert.That(Checker().Problem(selfSigned, null, "example.org"), Does.Contain("self-signed"));

        using var expired = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1));
        Assert.That(Checker().Problem(expired, null, "example.org"), Does.Contain("expired"));

        // Without the test CA in the trust store, its certificates lead nowhere trusted.
        using var fromCa = _ca.IssueInMemory("example.org", ["example.org"], [], []);
        Assert.That(new PeerCertificateCheck(new S2sOptions()).Problem(fromCa, null, "example.org"), Does.Contain("trusted root"));

        Assert.That(Checker().Problem(null, null, "example.org"), Does.Contain("no certificate"));
    }

    [TestCase("127.0.0.1:5269", "127.0.0.1", 5269, false)]
    [TestCase("tls://xmpp.example.org:5270", "xmpp.example.org", 5270, true)]
    [TestCase("[::1]:5269", "::1", 5269, false)]
    public void Peer_map_entries_are_host_and_port_with_an_optional_tls_scheme(string text, string host, int port, bool direct)
    {
        Assert.That(S2sResolver.TryParsePeer(text, out var target), Is.True);
        Assert.That((target!.Host, target.Port, target.DirectTls), Is.EqualTo((host, port, direct)));
    }

    [TestCase("example.org")]
    [TestCase("example.org:0")]
    [TestCase("example.org:http")]
    [TestCase(":5269")]
    public void Malformed_peer_map_entries_are_refused(string text) =>
        Assert.That(S2sResolver.TryParsePeer(text, out _), Is.False);

    [TestCase("10.0.0.53", "10.0.0.53:53")]
    [TestCase("127.0.0.1:5353", "127.0.0.1:5353")]
    [TestCase("[::1]:5353", "[::1]:5353")]
    [TestCase("::1", "[::1]:53")]
    public void Dns_servers_are_an_address_with_an_optional_port(string text, string expected)
    {
        Assert.That(S2sResolver.TryParseDnsServer(text, out var endpoint), Is.True);
        Assert.That(endpoint!.ToString(), Is.EqualTo(expected));
    }

    [TestCase("dns.example.org")]
    [TestCase("127.0.0.1:99999")]
    [TestCase("")]
    public void Malformed_dns_servers_are_refused(string text) =>
        Assert.That(S2sResolver.TryParseDnsServer(text, out _), Is.False);

    [Test]
    public void Srv_records_are_tried_by_priority_then_in_proportion_to_weight()
    {
        var records = new List<(int, int, string)> { (20, 0, "backup"), (10, 90, "heavy"), (10, 10, "light"), (10, 0, "zero") };
        var firsts = new Dictionary<string, int>();
        var random = new Random(1);
        for (int i = 0; i < 2000; i++)
        {
            var order = S2sResolver.Order(records, random);
            Assert.That(order, Has.Count.EqualTo(4));
            Assert.That(order[^1], Is.EqualTo("backup"), "a lower priority value is always tried first (RFC 2782)");
            firsts[order[0]] = firsts.GetValueOrDefault(order[0]) + 1;
        }
        Assert.That(firsts["heavy"], Is.InRange(1600, 1900), "weight 90 of 100");
        Assert.That(firsts["light"], Is.InRange(120, 300), "weight 10 of 100");
        Assert.That(firsts.GetValueOrDefault("zero"), Is.LessThan(60), "weight 0 only rarely first");
    }
}
