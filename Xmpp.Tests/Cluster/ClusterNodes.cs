using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Storage;
using Xmpp.Storage.Postgres;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// Three real xmppd processes in cluster mode for one fixture: one private Redis, one PostgreSQL database, each node
/// with its own ports and folders, a 3 s lease. Clients connect to a node directly.
public sealed class ClusterNodes : IAsyncDisposable
{
    public const int LeaseSeconds = 3;

    /// With a slow Redis link every lease renewal takes a round trip over it, and registering several: a longer lease.
    public const int SlowLinkLeaseSeconds = 10;
    public const string Password = "cluster-test-password";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "xmppd-cluster-" + Guid.NewGuid().ToString("N"));
    private readonly PostgresTestDatabase _database = new("cluster");
    private string _connectionString = "";

    public RedisInstance Redis { get; private set; } = null!;

    public Node[] Nodes { get; } = new Node[3];

    /// Nodes with an HTTPS port (GET /ready for HAProxy's checks) that trust the test HAProxy's PROXY headers.
    public bool BehindBalancer { get; private init; }

    public sealed class Node(string id, int c2s, int tls, string dir, int http = 0)
    {
        public string Id { get; } = id;
        public int HttpPort { get; } = http;
        public ServerEndpoint Endpoint { get; } = new("127.0.0.1", c2s, tls);
        public string Dir { get; } = dir;
        public ServerProcess? Process { get; set; }
    }

    /// A node (by index) that reaches Redis through a StallingProxy with a reply delay: what Redis sends it (replies, the directory's
    /// and the bus's pub/sub messages) arrives that much later, as over a slow or congested link.
    public (int Node, TimeSpan Delay)? SlowRedisLink { get; private init; }

    private StallingProxy? _slowLink;

    /// A node (by index) that reaches Redis through a StallingProxy (RedisLink), which a test stalls or cuts.
    public int? StallableRedisLink { get; private init; }

    public StallingProxy? RedisLink { get; private set; }

    public static Task<ClusterNodes> StartWithStallableRedisLinkAsync(int node, params string[] users) =>
        StartAsync(new ClusterNodes { StallableRedisLink = node }, users);

    /// A node (by index) started alone before the others, whose membership check runs only every ten minutes: it sees
    /// the others only when something names them, so their whole test is their "first second" for it.
    public int? LateWatcher { get; private init; }

    /// A cluster whose node (by index) does not see the others by its membership check (LateWatcher); the fixture does
    /// not wait for the nodes to see each other.
    public static Task<ClusterNodes> StartWithLateWatcherAsync(int node, params string[] users) =>
        StartAsync(new ClusterNodes { LateWatcher = node }, users);

    public static Task<ClusterNodes> StartAsync(params string[] users) => StartAsync(false, users);

    public static Task<ClusterNodes> StartWithSlowRedisLinkAsync(int node, TimeSpan delay, params string[] users) =>
        StartAsync(new ClusterNodes { SlowRedisLink = (node, delay) }, users);

    /// As StartWithSlowRedisLinkAsync, with pairs of users who are each other's contacts (subscription both) from the start,
    /// and that node applying the directory's events eventLag after they arrive (XMPP_CLUSTER_EVENT_DELAY_MS), while its
    /// own Redis commands are only as slow as the link: its replica lags more than its writes.
    public static Task<ClusterNodes> StartWithSlowRedisLinkAsync(int node, TimeSpan delay, TimeSpan eventLag, IReadOnlyList<(string, string)> contacts,
        params string[] users) =>
        StartAsync(new ClusterNodes { SlowRedisLink = (node, delay), EventLag = eventLag, Contacts = contacts }, users);

    public TimeSpan EventLag { get; private init; }

    /// Pairs of users who are each other's contacts with a subscription both ways (RFC 6121 §3), written before the start.
    public IReadOnlyList<(string, string)> Contacts { get; private init; } = [];

    public static Task<ClusterNodes> StartAsync(bool behindBalancer, params string[] users) =>
        StartAsync(new ClusterNodes { BehindBalancer = behindBalancer }, users);

    private static async Task<ClusterNodes> StartAsync(ClusterNodes cluster, string[] users)
    {
        Directory.CreateDirectory(cluster._root);
        // A test run that ends without its teardown still stops the nodes it started (by their PIDs).
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var n in cluster.Nodes)
            {
                // A node the teardown stopped has a disposed process, which no longer answers HasExited.
                try { if (n?.Process is { HasExited: false } p) { kill(p.Pid, 18); kill(p.Pid, 9); } }
                catch (InvalidOperationException) { }
            }
        };
        cluster.Redis = await RedisInstance.StartAsync();
        if (cluster.SlowRedisLink is { } slow) cluster._slowLink = new StallingProxy(cluster.Redis.Port, replyDelay: slow.Delay);
        if (cluster.StallableRedisLink is not null) cluster.RedisLink = new StallingProxy(cluster.Redis.Port);
        await cluster._database.ResetAsync();
        cluster._connectionString = await cluster._database.ConnectionStringAsync();
        // The accounts, straight into the shared database (the schema comes with the first open).
        var storage = await PostgresStorage.OpenAsync(cluster._connectionString);
        try
        {
            var accounts = new AccountService(storage, new XmppServerOptionsAccessor(new XmppServerOptions { Domains = ["localhost"] }),
                NullLogger<AccountService>.Instance);
            foreach (var u in users) await accounts.CreateAsync(u, Password);
            foreach (var (a, b) in cluster.Contacts)
            {
                await storage.Rosters.SetItemAsync(a, new RosterItem($"{b}@localhost", null, [], Subscription.Both, false, false, false, true));
                await storage.Rosters.SetItemAsync(b, new RosterItem($"{a}@localhost", null, [], Subscription.Both, false, false, false, true));
            }
            await storage.FlushAsync();
        }
        finally { await storage.DisposeAsync(); }
        for (int i = 0; i < 3; i++)
        {
            var dir = Path.Combine(cluster._root, "n" + (i + 1));
            Directory.CreateDirectory(dir);
            cluster.Nodes[i] = new Node("n" + (i + 1), TestServer.FreePort(), TestServer.FreePort(), dir, cluster.BehindBalancer ? TestServer.FreePort() : 0);
        }
        if (cluster.LateWatcher is { } first)
        {
            // Registered before the others start, so they see it at their start and it has not seen them.
            var watcher = cluster.Nodes[first];
            await cluster.StartNodeAsync(watcher);
            var registered = DateTime.UtcNow.AddSeconds(20);
            while (!watcher.Process!.Output.Contains($"Cluster node {watcher.Id} registered", StringComparison.Ordinal) && DateTime.UtcNow < registered)
                await Task.Delay(50);
            await Task.WhenAll(cluster.Nodes.Where(n => n != watcher).Select(cluster.StartNodeAsync));
            return cluster;
        }
        await Task.WhenAll(cluster.Nodes.Select(cluster.StartNodeAsync));
        // Nodes started together learn of each other from their once-a-second membership check, or at once from whatever
        // names a node not seen yet (docs/cluster-seams.md, "A node's first second", tested by ClusterFirstSecondTests).
        // The tests begin once every node has seen the other two, as in a running cluster.
        await cluster.WaitUntilFormedAsync();
        return cluster;
    }

    private async Task WaitUntilFormedAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!Nodes.All(n => Nodes.Where(o => o != n).All(o => n.Process!.Output.Contains($"Cluster node {o.Id} is up", StringComparison.Ordinal))))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the nodes did not see each other within 20 s:\n" + Logs());
            await Task.Delay(100);
        }
    }

    public async Task StartNodeAsync(Node node)
    {
        int index = Array.IndexOf(Nodes, node);
        int? via = _slowLink is not null && SlowRedisLink?.Node == index ? _slowLink.Port
            : RedisLink is not null && StallableRedisLink == index ? RedisLink.Port : null;
        var env = new Dictionary<string, string>
        {
            ["XMPP__STORAGE__CONNECTIONSTRING"] = _connectionString,
            ["XMPP__CLUSTER__REDIS"] = via is { } port
                ? Redis.ConnectionString.Replace($":{Redis.Port},", $":{port},", StringComparison.Ordinal)
                : Redis.ConnectionString,
        };
        if (EventLag > TimeSpan.Zero && SlowRedisLink?.Node == Array.IndexOf(Nodes, node))
            env["XMPP_CLUSTER_EVENT_DELAY_MS"] = ((int)EventLag.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        node.Process = await ServerProcess.StartAsync(node.Dir, node.Endpoint.C2sPort, env,
        [
            "--storage", "postgresql", "--domain", "localhost", "--c2s-port", node.Endpoint.C2sPort.ToString(),
            "--c2s-tls-port", node.Endpoint.C2sTlsPort.ToString(), "--data-dir", Path.Combine(node.Dir, "data"),
            "--cert-dir", Path.Combine(node.Dir, "certs"), "--listen", "127.0.0.1", "--http-port", node.HttpPort.ToString(), "--log-level", "Information",
            "--Xmpp:Cluster:Enabled=true", $"--Xmpp:Cluster:NodeId={node.Id}", $"--Xmpp:Cluster:LeaseSeconds={(SlowRedisLink is null ? LeaseSeconds : SlowLinkLeaseSeconds)}",
            // Many messages from one client in a burst: the per-session rate limit is not what these tests are about.
            "--Xmpp:RateLimits:MessagesPerSecond=0",
            .. LateWatcher == Array.IndexOf(Nodes, node) ? ["--Xmpp:Cluster:MembershipCheckMilliseconds=600000"] : Array.Empty<string>(),
            .. BehindBalancer ? [$"--Xmpp:ProxyProtocol:TrustedProxies:0={HaproxyInstance.SourceAddress}"] : Array.Empty<string>(),
        ]);
    }

    public Task<TestClient> ConnectAsync(int node, string user, string resource, bool presence = true) =>
        TestClient.ConnectAsync(Nodes[node].Endpoint, user, Password, resource, sendPresence: presence);

    /// An xmppd admin command for one running node (over its admin socket, found from its data folder).
    public Task<(int ExitCode, string Output)> CliAsync(int node, params string[] words) =>
        ServerProcess.RunAsync(Nodes[node].Dir, new Dictionary<string, string> { ["XMPP__STORAGE__CONNECTIONSTRING"] = _connectionString },
            [.. words, "--storage", "postgresql", "--domain", "localhost", "--data-dir", Path.Combine(Nodes[node].Dir, "data")]);

    public async Task<IDatabase> RedisDatabaseAsync() => (await ConnectionMultiplexer.ConnectAsync(Redis.ConnectionString)).GetDatabase();

    public void Signal(int node, int signal)
    {
        if (Nodes[node].Process is { HasExited: false } p) kill(p.Pid, signal);
    }

    public string Logs() => string.Join("\n", Nodes.Select(n => $"---- {n.Id} ----\n{n.Process?.Output}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var n in Nodes)
        {
            if (n?.Process is not { } p) continue;
            kill(p.Pid, 18);
            await p.DisposeAsync();
        }
        if (_slowLink is not null) await _slowLink.DisposeAsync();
        if (RedisLink is not null) await RedisLink.DisposeAsync();
        Redis?.Stop();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
