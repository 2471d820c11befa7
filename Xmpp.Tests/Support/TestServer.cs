using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;

namespace Xmpp.Tests.Support;

/// The real server started in-process on free loopback ports with a temporary data folder.
public sealed class TestServer : IAsyncDisposable
{
    private static readonly Lazy<string> SharedCertDir = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-tests-certs-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        return dir;
    });

    private readonly WebApplication _app;
    private readonly bool _ownsDir;
    private bool _stopped;

    private TestServer(WebApplication app, string root, bool ownsDir, int c2s, int tls, XmppServerOptions options)
    {
        _app = app;
        Root = root;
        _ownsDir = ownsDir;
        C2sPort = c2s;
        C2sTlsPort = tls;
        Options = options;
    }

    public string Domain => Options.Domains.Count > 0 ? Options.Domains[0] : "localhost";
    public string Host => "127.0.0.1";
    public int C2sPort { get; }
    public int C2sTlsPort { get; }
    public string Root { get; }
    public string DataDir => Path.Combine(Root, "data");
    public XmppServerOptions Options { get; }
    public int HttpPort => Options.HttpPort;

    /// A configure step that keeps the server's data in a PostgreSQL database instead of the embedded store.
    public static Action<Dictionary<string, string?>> WithPostgres(string connectionString) => o =>
    {
        o["Xmpp:Storage:Provider"] = "postgresql";
        o["Xmpp:Storage:ConnectionString"] = connectionString;
    };

    // XMPP_TEST_STORAGE=postgresql runs every server the tests start on PostgreSQL: one database per data folder, so
    // a test that restarts the server on the same folder finds its data again.
    private static readonly Dictionary<string, Task<string>> Databases = new(StringComparer.Ordinal);

    private static Task<string> DatabaseFor(string root)
    {
        lock (Databases)
        {
            if (!Databases.TryGetValue(root, out var database))
                Databases[root] = database = CreateDatabaseAsync();
            return database;
        }

        static async Task<string> CreateDatabaseAsync()
        {
            var instance = await PostgresInstance.GetAsync();
            return instance.ConnectionString(await instance.CreateDatabaseAsync("server"));
        }
    }

    /// Under XMPP_TEST_STORAGE=postgresql, the connection string of the database that servers started on this data
    /// folder use; null on the embedded store.
    public static async Task<string?> PostgresConnectionForAsync(string root) =>
        Environment.GetEnvironmentVariable("XMPP_TEST_STORAGE") == "postgresql" ? await DatabaseFor(root) : null;

    /// Environment for an xmppd process (ServerProcess) that must see the same data as servers started on this folder:
    /// under XMPP_TEST_STORAGE=postgresql the same database, otherwise nothing (the data folder is enough).
    public static async Task<IReadOnlyDictionary<string, string>> StorageEnvironmentForAsync(string root) =>
        await PostgresConnectionForAsync(root) is { } connection
            ? new Dictionary<string, string> { ["Xmpp__Storage__Provider"] = "postgresql", ["Xmpp__Storage__ConnectionString"] = connection }
            : new Dictionary<string, string>();

    /// A configure step that turns on the HTTPS endpoint on a free port.
    public static void WithHttp(Dictionary<string, string?> o) => o["Xmpp:HttpPort"] = FreePort().ToString();
    public IServiceProvider Services => _app.Services;

    public static async Task<TestServer> StartAsync(string? dataDir = null, Action<Dictionary<string, string?>>? configure = null,
        Action<IServiceCollection>? services = null)
    {
        bool owns = dataDir is null;
        var root = dataDir ?? Path.Combine(Path.GetTempPath(), "xmpp-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        int c2s = FreePort(), tls = FreePort();
        var overrides = new Dictionary<string, string?>
        {
            ["Xmpp:Domains:0"] = "localhost",
            ["Xmpp:C2sPort"] = c2s.ToString(),
            ["Xmpp:C2sTlsPort"] = tls.ToString(),
            ["Xmpp:DataDir"] = Path.Combine(root, "data"),
            ["Xmpp:CertDir"] = SharedCertDir.Value,
            ["Xmpp:ListenAddresses:0"] = "127.0.0.1",
            ["Logging:LogLevel:Default"] = Environment.GetEnvironmentVariable("XMPP_TEST_LOG") ?? "Warning",
            ["Xmpp:Limits:MaxConnectionsPerIp"] = "1000",
            // The HTTPS endpoint is off unless a test turns it on with WithHttp.
            ["Xmpp:HttpPort"] = "0",
            // Federation is off unless a test turns it on: a stanza for another domain is then bounced at once, as
            // before there were server links, instead of waiting for DNS.
            ["Xmpp:S2s:Enabled"] = "false",
            ["Xmpp:S2s:Port"] = "0",
            // Stanza rates (docs/security.md) are off unless a test sets them: many protocol tests send hundreds of
            // stanzas in a burst on purpose (queues, spools, CSI), far past what a person sends. AbuseLimitTests
            // turn them on; the real binary started by ServerProcess keeps the shipped defaults.
            ["Xmpp:RateLimits:MessagesPerSecond"] = "0",
            ["Xmpp:RateLimits:PresencePerSecond"] = "0",
            ["Xmpp:RateLimits:IqPerSecond"] = "0",
        };
        configure?.Invoke(overrides);
        if (Environment.GetEnvironmentVariable("XMPP_TEST_STORAGE") == "postgresql" && !overrides.ContainsKey("Xmpp:Storage:Provider"))
            WithPostgres(await DatabaseFor(root))(overrides);
        var loaded = ConfigurationLoader.Load(["--config", "/nonexistent-so-no-file-is-read.json"], overrides);
        var options = ConfigurationLoader.Bind(loaded.Configuration);
        var problems = OptionsValidator.Validate(options);
        if (problems.Count > 0) throw new InvalidOperationException(string.Join(Environment.NewLine, problems));
        var app = XmppHost.Build(options, loaded.Configuration, services);
        await app.StartAsync();
        return new TestServer(app, root, owns, options.C2sPort, options.C2sTlsPort, options);
    }

    // The kernel may hand the same ephemeral port to two probes in a row once the first listener is closed, and a
    // server given the same port twice refuses to start; so the last ports handed out are not handed out again.
    private static readonly Queue<int> RecentPorts = new();

    public static int FreePort()
    {
        lock (RecentPorts)
        {
            while (true)
            {
                using var l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                var port = ((IPEndPoint)l.LocalEndpoint).Port;
                if (RecentPorts.Contains(port)) continue;
                RecentPorts.Enqueue(port);
                if (RecentPorts.Count > 256) RecentPorts.Dequeue();
                return port;
            }
        }
    }

    public ServerEndpoint Endpoint => new(Host, C2sPort, C2sTlsPort, Domain);

    public static implicit operator ServerEndpoint(TestServer server) => server.Endpoint;

    public T Get<T>() where T : notnull => _app.Services.GetRequiredService<T>();

    public async Task AddUserAsync(string username, string password)
    {
        if (!await Get<AccountService>().CreateAsync(username, password))
            throw new InvalidOperationException($"user {username} exists");
    }

    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsDir)
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
