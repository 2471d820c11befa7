using System.Net;
using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// What a self-hoster reads in the log about server links: which SRV and address records were tried and why each
/// failed, which authentication a link used, and why a certificate was not accepted. SRV records come from a DNS
/// responder in the test (Xmpp:S2s:DnsServers), so the look-ups are real.
[TestFixture, Category("S2s")]
public sealed class S2sLogTests
{
    private static async Task<TestClient> Login(TestServer server, string user)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", "phone");
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private static void Verbose(Dictionary<string, string?> o)
    {
        o["Logging:LogLevel:Xmpp.Server.S2s"] = "Information";
        o["Logging:Console:LogLevel:Xmpp.Server.S2s"] = "Warning";
    }

    [Test]
    public async Task Every_srv_target_tried_is_logged_with_why_it_failed()
    {
        await using var dns = TestDns.Start();
        int closed = TestServer.FreePort();
        dns.Srv("_xmpp-server._tcp.far.example.net", 0, 5, closed, "xmpp1.far.example.net")
            .Srv("_xmpp-server._tcp.far.example.net", 10, 5, 5269, "xmpp2.far.example.net")
            .Address("xmpp1.far.example.net", "127.0.0.1");
        var log = new LogCapture();
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Domains:0"] = "a.test";
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:DnsServers:0"] = dns.Endpoint;
            Verbose(o);
        }, services: log.AddTo);
        await server.AddUserAsync("alice", "alice-secret");
        await using var alice = await Login(server, "alice");
        await alice.SendAsync("<message to='someone@far.example.net' type='chat' id='srv-1'><body>hello</body></message>");
        var error = await alice.ReceiveAsync(e => e.Attr("id") == "srv-1", TimeSpan.FromSeconds(15));
        Assert.That(error.Child("error", Ns.Client)?.Child("remote-server-not-found", Ns.StanzaErrors), Is.Not.Null, error.ToString());

        var lines = log.Matching("far.example.net", "could not connect");
        Assert.That(lines, Has.Count.EqualTo(1), log.Dump());
        var line = lines[0];
        // The direct TLS service has no records; the first STARTTLS target refuses; the second has no address.
        Assert.That(line, Does.Contain("SRV _xmpps-server._tcp.far.example.net: "), line);
        Assert.That(line, Does.Contain($"xmpp1.far.example.net:{closed} (STARTTLS, SRV _xmpp-server._tcp.far.example.net priority 0 weight 5) at 127.0.0.1: ConnectionRefused"), line);
        Assert.That(line, Does.Contain("xmpp2.far.example.net:5269 (STARTTLS, SRV _xmpp-server._tcp.far.example.net priority 10 weight 5): no address for xmpp2.far.example.net"), line);
        Assert.That(line.IndexOf("xmpp1", StringComparison.Ordinal), Is.LessThan(line.IndexOf("xmpp2", StringComparison.Ordinal)), "priority order");
        Assert.That(dns.Queries, Is.GreaterThanOrEqualTo(3));
    }

    [Test]
    public async Task A_link_found_through_srv_logs_its_target_and_dialback_and_why_the_certificate_was_not_accepted()
    {
        await using var dns = TestDns.Start();
        var logA = new LogCapture();
        var logB = new LogCapture();
        await using var pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            Verbose(o);
            if (domain != "a.test") return;
            // a.test finds b.test through DNS, not through the static map.
            var port = int.Parse(o["Xmpp:S2s:Peers:b.test"]!.Split(':')[1]);
            o.Remove("Xmpp:S2s:Peers:b.test");
            o["Xmpp:S2s:DnsServers:0"] = dns.Endpoint;
            dns.Srv("_xmpp-server._tcp.b.test", 0, 5, port, "xmpp.b.test").Address("xmpp.b.test", "127.0.0.1");
        }, (domain, services) => (domain == "a.test" ? logA : logB).AddTo(services));
        await pair.A.AddUserAsync("alice", "alice-secret");
        await pair.B.AddUserAsync("bob", "bob-secret");
        await using var alice = await Login(pair.A, "alice");
        await using var bob = await Login(pair.B, "bob");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='log-1'><body>found you</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "log-1", TimeSpan.FromSeconds(20));

        Assert.That(logA.Matching("a.test -> b.test: link up via xmpp.b.test:", "SRV _xmpp-server._tcp.b.test priority 0 weight 5",
            "authenticated with dialback"), Has.Count.EqualTo(1), logA.Dump());
        Assert.That(logA.Matching("the certificate of xmpp.b.test:", "was not accepted (the certificate is self-signed", "continuing with dialback"),
            Has.Count.EqualTo(1), logA.Dump());
        Assert.That(logB.Matching("dialback for a.test -> b.test valid"), Is.Not.Empty, logB.Dump());
        Assert.That(logB.Matching("no SASL EXTERNAL for a.test: the certificate is self-signed"), Is.Not.Empty, logB.Dump());
    }

    [Test]
    public async Task A_link_with_verified_certificates_logs_sasl_external_on_both_sides()
    {
        var logA = new LogCapture();
        var logB = new LogCapture();
        await using var pair = await S2sPair.StartAsync(S2sCertificates.FromTestCa, (_, o) => Verbose(o),
            (domain, services) => (domain == "a.test" ? logA : logB).AddTo(services));
        await pair.A.AddUserAsync("alice", "alice-secret");
        await pair.B.AddUserAsync("bob", "bob-secret");
        await using var alice = await Login(pair.A, "alice");
        await using var bob = await Login(pair.B, "bob");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='ext-1'><body>certified</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "ext-1", TimeSpan.FromSeconds(20));
        Assert.That(logA.Matching("a.test -> b.test: link up via", "static peer map", "authenticated with SASL EXTERNAL"), Has.Count.EqualTo(1), logA.Dump());
        Assert.That(logB.Matching("a.test authenticated with SASL EXTERNAL for b.test"), Has.Count.EqualTo(1), logB.Dump());
    }

    [Test]
    public async Task A_certificate_that_names_another_domain_is_logged_as_a_name_mismatch()
    {
        // b.test presents a certificate from a CA a.test trusts, but for wrong.test only.
        var root = Path.Combine(Path.GetTempPath(), "xmpp-s2s-mismatch-" + Guid.NewGuid().ToString("N"));
        using var ca = TestCa.Create();
        var caFile = Path.Combine(root, "ca.pem");
        Directory.CreateDirectory(root);
        File.WriteAllText(caFile, ca.Certificate.ExportCertificatePem());
        ca.Issue("b.test", Path.Combine(root, "certs"), dnsNames: ["wrong.test"], xmppAddrs: []);
        var logA = new LogCapture();
        try
        {
            await using var pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
            {
                Verbose(o);
                if (domain == "a.test") o["Xmpp:S2s:TrustedCaFile"] = caFile;
                else o["Xmpp:CertDir"] = Path.Combine(root, "certs");
            }, (domain, services) => { if (domain == "a.test") logA.AddTo(services); });
            await pair.A.AddUserAsync("alice", "alice-secret");
            await pair.B.AddUserAsync("bob", "bob-secret");
            await using var alice = await Login(pair.A, "alice");
            await using var bob = await Login(pair.B, "bob");
            await alice.SendAsync("<message to='bob@b.test' type='chat' id='mm-1'><body>who are you?</body></message>");
            await bob.ReceiveAsync(e => e.Attr("id") == "mm-1", TimeSpan.FromSeconds(20));
            Assert.That(logA.Matching("was not accepted (the certificate (CN=b.test, names: DNS:wrong.test) does not name b.test)", "continuing with dialback"),
                Has.Count.EqualTo(1), logA.Dump());
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
