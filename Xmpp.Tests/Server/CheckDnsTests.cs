using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// `xmppd check` on DNS and certificates for federation, as `prosodyctl check dns` and `check certs`: the SRV records of
/// each served domain and its service subdomains point at this host and its ports, and the certificate covers them.
/// The binary runs as a process, asking a DNS responder in the test (Xmpp:S2s:DnsServers).
[TestFixture, Category("S2s")]
public sealed class CheckDnsTests
{
    private const string Domain = "chat.example.net";
    private string _dir = null!;
    private int _c2s, _c2sTls, _s2s, _s2sTls;

    [SetUp]
    public void MakeDir()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-check-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        (_c2s, _c2sTls, _s2s, _s2sTls) = (TestServer.FreePort(), TestServer.FreePort(), TestServer.FreePort(), TestServer.FreePort());
    }

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private Task<(int ExitCode, string Output)> Check(TestDns dns, int proxyPort = 0) =>
        ServerProcess.RunAsync(_dir, "check", "--domain", Domain, "--c2s-port", _c2s.ToString(), "--c2s-tls-port", _c2sTls.ToString(),
            "--http-port", "0", "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"),
            $"--Xmpp:S2s:Port={_s2s}", $"--Xmpp:S2s:DirectTlsPort={_s2sTls}", $"--Xmpp:S2s:DnsServers:0={dns.Endpoint}", $"--Xmpp:Proxy65:Port={proxyPort}");

    private static List<string> Lines(string output, string prefix) =>
        output.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).ToList();

    /// Every record a well-set-up server publishes, all pointing at xmpp.chat.example.net = 127.0.0.1 (this host).
    private TestDns GoodDns()
    {
        var dns = TestDns.Start();
        dns.Srv("_xmpp-client._tcp." + Domain, 0, 5, _c2s, "xmpp." + Domain)
            .Srv("_xmpps-client._tcp." + Domain, 0, 5, _c2sTls, "xmpp." + Domain)
            .Srv("_xmpp-server._tcp." + Domain, 0, 5, _s2s, "xmpp." + Domain)
            .Srv("_xmpps-server._tcp." + Domain, 0, 5, _s2sTls, "xmpp." + Domain)
            .Srv("_xmpp-server._tcp.conference." + Domain, 0, 5, _s2s, "xmpp." + Domain)
            .Srv("_xmpps-server._tcp.conference." + Domain, 0, 5, _s2sTls, "xmpp." + Domain)
            .Address("xmpp." + Domain, "127.0.0.1");
        return dns;
    }

    [Test]
    public async Task A_good_setup_passes_with_records_and_certificate_checked()
    {
        Assert.That((await ServerProcess.RunAsync(_dir, "cert", "generate", Domain, "--cert-dir", Path.Combine(_dir, "certs"))).ExitCode, Is.EqualTo(0));
        await using var dns = GoodDns();
        var (exit, output) = await Check(dns);
        Assert.That(exit, Is.EqualTo(0), output);
        Assert.That(Lines(output, "problem:"), Is.Empty, output);
        Assert.That(output, Does.Contain($"dns: checked {Domain}, conference.{Domain}"), output);
        Assert.That(Lines(output, "warning: dns"), Is.Empty, output);
        Assert.That(dns.Queries, Is.GreaterThanOrEqualTo(6), "the records were looked up");
    }

    [Test]
    public async Task Each_wrong_record_and_an_uncovered_subdomain_are_one_problem_line_each()
    {
        // A certificate for the domain alone (no *.DOMAIN), from a CA, expiring in 5 days.
        using (var ca = TestCa.Create())
            ca.Issue(Domain, Path.Combine(_dir, "certs"), dnsNames: [Domain], notAfter: DateTimeOffset.UtcNow.AddDays(5));
        await using var dns = TestDns.Start();
        dns.Srv("_xmpp-client._tcp." + Domain, 0, 5, 5999, "xmpp." + Domain)                  // wrong port
            .Srv("_xmpps-client._tcp." + Domain, 0, 5, _c2sTls, "xmpp." + Domain)
            .Srv("_xmpp-server._tcp." + Domain, 0, 5, _s2s, "old-host.example.net")           // another machine
            .Srv("_xmpps-server._tcp." + Domain, 0, 5, _s2sTls, "gone.example.net")           // no address at all
            .Address("xmpp." + Domain, "127.0.0.1")
            .Address("old-host.example.net", "203.0.113.77");
        // conference.chat.example.net and proxy.chat.example.net: neither SRV nor address records.
        var (exit, output) = await Check(dns, proxyPort: TestServer.FreePort());
        Assert.That(exit, Is.EqualTo(1), output);
        var problems = Lines(output, "problem:");
        Assert.That(problems, Has.Some.Contains($"_xmpp-client._tcp.{Domain}: xmpp.{Domain}:5999").And.Contains($"points at port 5999, but Xmpp:C2sPort is {_c2s}"), output);
        Assert.That(problems, Has.Some.Contains($"_xmpp-server._tcp.{Domain}: old-host.example.net:{_s2s}").And.Contains("resolves to 203.0.113.77, which is not this host"), output);
        Assert.That(problems, Has.Some.Contains($"_xmpps-server._tcp.{Domain}: the target gone.example.net has no A/AAAA record"), output);
        Assert.That(problems, Has.Some.Contains($"_xmpp-server._tcp.conference.{Domain}: no SRV record, and conference.{Domain} has no A/AAAA record"), output);
        Assert.That(problems, Has.Some.Contains($"certificate: conference.{Domain}:").And.Contains($"not conference.{Domain}"), output);
        Assert.That(problems, Has.Count.EqualTo(5), output);
        Assert.That(Lines(output, "warning: certificate:"), Has.Some.Contains("expires in 5 day(s)"), output);
        // The proxy serves local users only: unreachable from afar is worth a warning, not a failed check.
        Assert.That(Lines(output, "warning: dns:"), Has.Some.Contains($"_xmpp-server._tcp.proxy.{Domain}: no SRV record"), output);
        Assert.That(Lines(output, "warning: certificate:"), Has.Some.Contains($"proxy.{Domain}: the certificate other servers get"), output);
        Assert.That(output, Does.Not.Contain("ok:"));
    }

    [Test]
    public async Task When_dns_does_not_answer_the_records_are_not_checked_and_it_says_so()
    {
        Assert.That((await ServerProcess.RunAsync(_dir, "cert", "generate", Domain, "--cert-dir", Path.Combine(_dir, "certs"))).ExitCode, Is.EqualTo(0));
        await using var dns = TestDns.Start();
        dns.Silent = true;
        var (exit, output) = await Check(dns);
        Assert.That(exit, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain($"warning: dns: no answer from {dns.Endpoint}; DNS records were not checked"), output);
        Assert.That(Lines(output, "problem:"), Is.Empty, output);
    }
}
