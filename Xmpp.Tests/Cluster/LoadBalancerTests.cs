using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Metrics;
using Xmpp.Server.Streams;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// Nodes behind a real HAProxy in TCP mode (Support/HaproxyInstance): PROXY protocol v2 from the balancer, health
/// checks on GET /ready, clients on other loopback addresses (127.0.0.7, 127.0.0.8) as different machines. The nodes
/// here are independent servers (no shared session directory): two of them share users, not sessions.
[TestFixture, Category("Cluster")]
public sealed class LoadBalancerTests
{
    private static readonly IPAddress Client7 = IPAddress.Parse("127.0.0.7");
    private static readonly IPAddress Client8 = IPAddress.Parse("127.0.0.8");
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(300);
    private const int Fall = 2;

    private sealed class Switch : IReadinessCheck
    {
        public volatile string? Problem;
        public ValueTask<string?> ProblemAsync(CancellationToken cancellationToken) => ValueTask.FromResult(Problem);
    }

    private static async Task<TestServer> NodeAsync(Switch? readiness = null, Action<Dictionary<string, string?>>? configure = null,
        LogCapture? log = null)
    {
        var node = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:ProxyProtocol:TrustedProxies:0"] = HaproxyInstance.SourceAddress;
            configure?.Invoke(o);
        }, services: s =>
        {
            if (readiness is not null) s.AddSingleton<IReadinessCheck>(readiness);
            log?.AddTo(s);
        });
        await node.AddUserAsync("alice", "alice-password");
        await node.AddUserAsync("bob", "bob-password");
        return node;
    }

    private static HaproxyBackend Backend(string name, TestServer node) => new(name, node.C2sPort, node.C2sTlsPort, node.HttpPort);

    private static string[] Addresses(TestServer node) => node.Get<ConnectionTracker>().All.Select(s => s.RemoteAddress).OrderBy(a => a).ToArray();

    [Test]
    public async Task Clients_through_haproxy_log_in_over_starttls_and_direct_tls_and_chat()
    {
        var log = new LogCapture();
        await using var node = await NodeAsync(configure: o => o["Logging:LogLevel:Xmpp.Server.ProxyProtocol"] = "Debug", log: log);
        using var haproxy = await HaproxyInstance.StartAsync([Backend("node1", node)], Interval, Fall);
        await haproxy.WaitForStateAsync("node1", "UP", TimeSpan.FromSeconds(10));
        await using var alice = await TestClient.ConnectAsync(haproxy.Endpoint(Client7), "alice", "alice-password", "phone", sendPresence: true);
        await using var bob = await TestClient.ConnectAsync(haproxy.Endpoint(Client8), "bob", "bob-password", "laptop", TlsMode.Direct, sendPresence: true);
        await alice.SendAsync($"<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m1'><body>through the balancer</body></message>");
        var received = await bob.ReceiveAsync(e => e.Name == "message");
        Assert.That(received.ChildText("body", Ns.Client), Is.EqualTo("through the balancer"));
        Assert.That(received.Attr("from"), Is.EqualTo("alice@localhost/phone"));
        // HAProxy in TCP mode does not touch TLS: the certificate both clients checked is the node's own, the same one a
        // client connecting directly gets.
        await using var direct = await TestClient.OpenAsync(node.Endpoint, TlsMode.Direct);
        Assert.That(alice.Tls!.RemoteCertificate!.GetCertHashString(), Is.EqualTo(direct.Tls!.RemoteCertificate!.GetCertHashString()));
        Assert.That(bob.Tls!.RemoteCertificate!.GetCertHashString(), Is.EqualTo(direct.Tls!.RemoteCertificate!.GetCertHashString()));
        Assert.That(bob.Tls.NegotiatedApplicationProtocol.ToString(), Is.EqualTo("xmpp-client"), "ALPN passes through TCP mode");
        Assert.That(Addresses(node), Is.EqualTo(new[] { "127.0.0.1", "127.0.0.7", "127.0.0.8" }));
        // The log names both: the balancer the connection came from and the client it speaks for.
        Assert.That(log.Matching($"from {HaproxyInstance.SourceAddress}:", "on the c2s listener: client 127.0.0.7:"), Has.Count.EqualTo(1), log.Dump());
        Assert.That(log.Matching($"from {HaproxyInstance.SourceAddress}:", "on the c2s direct TLS listener: client 127.0.0.8:"), Has.Count.EqualTo(1));
        // HAProxy's health checks on the HTTPS port speak for themselves (LOCAL).
        Assert.That(log.Matching("on the HTTPS listener: client LOCAL"), Is.Not.Empty);
    }

    [Test]
    public async Task The_node_limits_connections_per_client_address_not_per_balancer()
    {
        await using var node = await NodeAsync(configure: o => o["Xmpp:Limits:MaxConnectionsPerIp"] = "1");
        using var haproxy = await HaproxyInstance.StartAsync([Backend("node1", node)], Interval, Fall);
        await haproxy.WaitForStateAsync("node1", "UP", TimeSpan.FromSeconds(10));
        await using var first = await TestClient.ConnectAsync(haproxy.Endpoint(Client7), "alice", "alice-password");
        await using var other = await TestClient.ConnectAsync(haproxy.Endpoint(Client8), "bob", "bob-password");
        Assert.That(Addresses(node), Is.EqualTo(new[] { "127.0.0.7", "127.0.0.8" }));
        await using var second = await TestClient.ConnectRawAsync(haproxy.Endpoint(Client7));
        await second.SendRawAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
        Assert.That(await second.ReadStreamErrorAsync(), Is.EqualTo(StreamErrors.PolicyViolation));
        // Through the balancer every connection comes from 127.0.0.3; without the PROXY header the second client
        // (127.0.0.8) would have been refused too.
        Assert.That(first.StreamEnded || other.StreamEnded, Is.False);
    }

    [Test]
    public async Task In_band_registration_through_haproxy_is_limited_and_logged_per_client_address()
    {
        var log = new LogCapture();
        await using var node = await NodeAsync(configure: o =>
        {
            o["Xmpp:Registration:AllowRegistration"] = "true";
            o["Xmpp:Registration:MinSecondsBetweenPerIp"] = "300";
            o["Logging:LogLevel:Xmpp.Server.Modules"] = "Information";
        }, log: log);
        using var haproxy = await HaproxyInstance.StartAsync([Backend("node1", node)], Interval, Fall);
        await haproxy.WaitForStateAsync("node1", "UP", TimeSpan.FromSeconds(10));
        async Task<Element> RegisterAsync(IPAddress from, string user)
        {
            await using var c = await TestClient.OpenAsync(haproxy.Endpoint(from));
            await c.SendRawAsync($"<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>{user}</username><password>{user}-password</password></query></iq>");
            return await c.ReadElementAsync();
        }
        Assert.That((await RegisterAsync(Client7, "frank")).Attr("type"), Is.EqualTo("result"));
        // XEP-0077 §3.1: a second registration from the same client address waits; another client's does not.
        var again = await RegisterAsync(Client7, "grace");
        Assert.That(again.Child("error", Ns.Client)?.Child("resource-constraint", Ns.StanzaErrors), Is.Not.Null, again.ToString());
        Assert.That((await RegisterAsync(Client8, "heidi")).Attr("type"), Is.EqualTo("result"));
        Assert.That(log.Matching("Account frank registered in-band from 127.0.0.7"), Has.Count.EqualTo(1), log.Dump());
        Assert.That(log.Matching("Account heidi registered in-band from 127.0.0.8"), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task A_node_whose_ready_check_fails_is_taken_out_within_its_check_interval_and_new_clients_go_to_the_other()
    {
        var readiness1 = new Switch();
        await using var node1 = await NodeAsync(readiness1);
        await using var node2 = await NodeAsync();
        using var haproxy = await HaproxyInstance.StartAsync([Backend("node1", node1), Backend("node2", node2)], Interval, Fall);
        await haproxy.WaitForStateAsync("node1", "UP", TimeSpan.FromSeconds(10));
        await haproxy.WaitForStateAsync("node2", "UP", TimeSpan.FromSeconds(10));

        readiness1.Problem = "storage does not commit";
        var down = await haproxy.WaitForStateAsync("node1", "DOWN", TimeSpan.FromSeconds(10));
        TestContext.Out.WriteLine($"node1 marked DOWN {down.TotalMilliseconds:F0} ms after /ready began to fail (inter {Interval.TotalMilliseconds} ms, fall {Fall})");
        // fall consecutive failed checks, each at most one interval apart, plus one interval for the check in flight.
        Assert.That(down, Is.LessThan(Interval * (Fall + 1) + TimeSpan.FromSeconds(2)), "slack for a loaded machine");

        var clients = new List<TestClient>();
        try
        {
            for (int i = 0; i < 4; i++)
                clients.Add(await TestClient.ConnectAsync(haproxy.Endpoint(Client7), "alice", "alice-password", "r" + i,
                    i % 2 == 0 ? TlsMode.StartTls : TlsMode.Direct));
            Assert.That(Addresses(node1), Is.Empty, "no new client goes to a node that is not ready");
            Assert.That(Addresses(node2), Has.Length.EqualTo(4));

            readiness1.Problem = null;
            var up = await haproxy.WaitForStateAsync("node1", "UP", TimeSpan.FromSeconds(10));
            TestContext.Out.WriteLine($"node1 back UP after {up.TotalMilliseconds:F0} ms (rise 2)");
            // leastconn: the next clients go to the node that has none.
            clients.Add(await TestClient.ConnectAsync(haproxy.Endpoint(Client8), "bob", "bob-password"));
            Assert.That(Addresses(node1), Is.EqualTo(new[] { "127.0.0.8" }));
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Test]
    public async Task The_documented_haproxy_example_is_a_valid_configuration()
    {
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "..", "..", "..", "..", "contrib", "haproxy", "haproxy.cfg");
        var info = new ProcessStartInfo("/usr/sbin/haproxy") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-c", "-f", path }) info.ArgumentList.Add(a);
        using var haproxy = Process.Start(info)!;
        var output = await haproxy.StandardOutput.ReadToEndAsync() + await haproxy.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await haproxy.WaitForExitAsync(cts.Token);
        Assert.That(haproxy.ExitCode, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain("Configuration file is valid"));
        Assert.That(output, Does.Not.Contain("WARNING"), "no warnings either");
        var text = await File.ReadAllTextAsync(path);
        foreach (var line in new[] { "mode tcp", "balance leastconn", "send-proxy-v2", "uri /ready", "check port 5281", "timeout client 10m" })
            Assert.That(text, Does.Contain(line));
    }
}
