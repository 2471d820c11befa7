using System.Diagnostics;
using System.Net;
using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// Two real xmppd processes on one PostgreSQL database behind a real HAProxy: one node killed with SIGKILL, or stopped
/// with SIGTERM and drained, and its clients carry on through the balancer on the other. The nodes share accounts,
/// not sessions (the Redis session directory of #17 is another piece), so what is shown here is the balancer's part:
/// health checks, redispatch and the drain.
[TestFixture, Category("Cluster")]
public sealed class LoadBalancerFailoverTests
{
    private static readonly IPAddress Client7 = IPAddress.Parse("127.0.0.7");
    private static readonly IPAddress Client8 = IPAddress.Parse("127.0.0.8");
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(300);
    private const int DrainSeconds = 4;

    private readonly PostgresTestDatabase _database = new("lb");
    private string _dir = null!;
    private Dictionary<string, string> _environment = null!;
    private readonly Dictionary<string, HaproxyBackend> _nodes = [];
    private readonly Dictionary<string, ServerProcess> _processes = [];

    private string[] Args(HaproxyBackend n) =>
    [
        "--storage", "postgresql", "--domain", "localhost", "--c2s-port", n.C2sPort.ToString(), "--c2s-tls-port", n.C2sTlsPort.ToString(),
        "--http-port", n.HttpPort.ToString(), "--data-dir", Path.Combine(_dir, n.Name), "--cert-dir", Path.Combine(_dir, "certs"),
        "--listen", "127.0.0.1", "--log-level", "Warning",
        $"--Xmpp:ProxyProtocol:TrustedProxies:0={HaproxyInstance.SourceAddress}", $"--Xmpp:DrainSeconds={DrainSeconds}",
    ];

    [SetUp]
    public async Task Prepare()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-lb-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        await _database.ResetAsync();
        _environment = new() { ["XMPP__STORAGE__CONNECTIONSTRING"] = await _database.ConnectionStringAsync() };
        foreach (var name in new[] { "node1", "node2" })
            _nodes[name] = new HaproxyBackend(name, TestServer.FreePort(), TestServer.FreePort(), TestServer.FreePort());
        // One certificate for the service, as every node of a cluster presents the domain's certificate.
        var cert = await ServerProcess.RunAsync(_dir, _environment, ["cert", "generate", "localhost", .. Args(_nodes["node1"])]);
        Assert.That(cert.ExitCode, Is.EqualTo(0), cert.Output);
        foreach (var (u, p) in new[] { ("alice", "alice-password"), ("bob", "bob-password") })
        {
            var r = await ServerProcess.RunAsync(_dir, _environment, ["user", "add", u, p, .. Args(_nodes["node1"])]);
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Output);
        }
        foreach (var (name, node) in _nodes)
            _processes[name] = await ServerProcess.StartAsync(_dir, node.C2sPort, _environment, Args(node));
    }

    [TearDown]
    public async Task Cleanup()
    {
        foreach (var p in _processes.Values) await p.DisposeAsync();
        _processes.Clear();
        _nodes.Clear();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private async Task<HaproxyInstance> BalancerAsync()
    {
        var haproxy = await HaproxyInstance.StartAsync([_nodes["node1"], _nodes["node2"]], Interval);
        await haproxy.WaitForStateAsync("node1", "UP", TimeSpan.FromSeconds(20));
        await haproxy.WaitForStateAsync("node2", "UP", TimeSpan.FromSeconds(20));
        return haproxy;
    }

    private static async Task ChatAsync(HaproxyInstance haproxy, TestClient alice, string text)
    {
        await using var bob = await TestClient.ConnectAsync(haproxy.Endpoint(Client8), "bob", "bob-password", "laptop", sendPresence: true);
        // Both are on the surviving node now: the other is down, so the balancer has nowhere else to send bob.
        await alice.SendAsync($"<message xmlns='jabber:client' to='bob@localhost/laptop' type='chat' id='after'><body>{text}</body></message>");
        var received = await bob.ReceiveAsync(e => e.Name == "message");
        Assert.That(received.ChildText("body", Ns.Client), Is.EqualTo(text));
    }

    [Test]
    public async Task A_node_killed_with_kill_9_loses_its_client_and_the_client_reconnects_to_the_other_node_at_once()
    {
        using var haproxy = await BalancerAsync();
        var alice = await TestClient.ConnectAsync(haproxy.Endpoint(Client7), "alice", "alice-password", "phone");
        var victim = await haproxy.ServerHoldingOneConnectionAsync();
        var survivor = victim == "node1" ? "node2" : "node1";

        _processes[victim].KillHard();
        var clock = Stopwatch.StartNew();
        Assert.That(await Wait.UntilAsync(() => alice.StreamEnded, TimeSpan.FromSeconds(10)), Is.True, "the balancer closes the client's side");
        await alice.DisposeAsync();
        TestContext.Out.WriteLine($"client saw its connection end {clock.ElapsedMilliseconds} ms after kill -9 of {victim}");

        // Reconnect at once, before the health checks have noticed: a connection the dead node refuses is redispatched.
        clock.Restart();
        await using var again = await TestClient.ConnectAsync(haproxy.Endpoint(Client7), "alice", "alice-password", "phone");
        TestContext.Out.WriteLine($"reconnected and logged in {clock.ElapsedMilliseconds} ms after the loss");
        Assert.That(await Wait.UntilAsync(async () => (await haproxy.StatAsync("c2s", "scur"))[survivor] == "1", TimeSpan.FromSeconds(5)), Is.True,
            "the new connection is on the survivor");
        var down = await haproxy.WaitForStateAsync(victim, "DOWN", TimeSpan.FromSeconds(10));
        TestContext.Out.WriteLine($"{victim} marked DOWN within {down.TotalMilliseconds:F0} ms more");
        await ChatAsync(haproxy, again, "after the crash");
    }

    [Test]
    public async Task A_node_stopped_with_sigterm_is_taken_out_by_the_balancer_before_it_closes_its_clients()
    {
        using var haproxy = await BalancerAsync();
        await using var alice = await TestClient.ConnectAsync(haproxy.Endpoint(Client7), "alice", "alice-password", "phone");
        var leaving = await haproxy.ServerHoldingOneConnectionAsync();
        var staying = leaving == "node1" ? "node2" : "node1";

        var clock = Stopwatch.StartNew();
        var stopped = _processes[leaving].TerminateAsync();
        var down = await haproxy.WaitForStateAsync(leaving, "DOWN", TimeSpan.FromSeconds(DrainSeconds));
        TestContext.Out.WriteLine($"{leaving} marked DOWN {down.TotalMilliseconds:F0} ms after SIGTERM (drain {DrainSeconds} s)");
        Assert.That(_processes[leaving].HasExited, Is.False, "still draining");
        Assert.That(alice.StreamEnded, Is.False, "its clients stay until the drain ends");

        var error = await alice.ReceiveAsync(e => e.Name == "error", TimeSpan.FromSeconds(DrainSeconds + 10));
        Assert.That(error.FirstElement?.Name, Is.EqualTo("system-shutdown"));
        TestContext.Out.WriteLine($"system-shutdown {clock.ElapsedMilliseconds} ms after SIGTERM");
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(DrainSeconds - 0.5)));
        Assert.That(await stopped.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(0));

        await using var again = await TestClient.ConnectAsync(haproxy.Endpoint(Client7), "alice", "alice-password", "phone");
        Assert.That(await Wait.UntilAsync(async () => (await haproxy.StatAsync("c2s", "scur"))[staying] == "1", TimeSpan.FromSeconds(5)), Is.True,
            "the new connection is on the node that stays");
        await ChatAsync(haproxy, again, "after the drain");
    }
}
