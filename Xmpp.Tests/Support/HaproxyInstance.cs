using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Xmpp.Tests.Support;

/// One node behind the balancer: its STARTTLS, direct TLS and HTTPS (health check) ports on 127.0.0.1.
public sealed record HaproxyBackend(string Name, int C2sPort, int C2sTlsPort, int HttpPort);

/// A private HAProxy (Debian's haproxy, installed by test.sh) in TCP mode in front of the given nodes: two frontends
/// (STARTTLS-style and direct-TLS-style ports) on free loopback ports, backends that send PROXY protocol v2 from
/// SourceAddress and check GET /ready on each node's HTTPS port every CheckInterval. Its configuration and admin
/// socket sit in a temporary folder; it runs in the foreground (-db) and is stopped by its PID.
public sealed class HaproxyInstance : IDisposable
{
    /// The address HAProxy connects to the nodes from: the one the nodes trust (Xmpp:ProxyProtocol:TrustedProxies),
    /// so a test client on 127.0.0.1 still reaches a node directly as an ordinary client.
    public const string SourceAddress = "127.0.0.3";

    private readonly string _root;
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private int _stopped;

    private HaproxyInstance(string root, Process process, int c2s, int tls, TimeSpan interval)
    {
        _root = root;
        _process = process;
        C2sPort = c2s;
        C2sTlsPort = tls;
        CheckInterval = interval;
        process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int C2sPort { get; }
    public int C2sTlsPort { get; }
    public TimeSpan CheckInterval { get; }
    public int Pid => _process.Id;
    public string ConfigPath => Path.Combine(_root, "haproxy.cfg");
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// Where clients connect: HAProxy's frontends, seen from the given loopback address (another "client machine").
    public ServerEndpoint Endpoint(System.Net.IPAddress? from = null) => new("127.0.0.1", C2sPort, C2sTlsPort, "localhost", from);

    public static async Task<HaproxyInstance> StartAsync(IReadOnlyList<HaproxyBackend> backends, TimeSpan? checkInterval = null, int fall = 2)
    {
        const string binary = "/usr/sbin/haproxy";
        if (!File.Exists(binary)) throw new InvalidOperationException("haproxy not found: run ./test.sh, which installs Debian's haproxy package.");
        StopLeftovers();
        var interval = checkInterval ?? TimeSpan.FromMilliseconds(300);
        var root = Path.Combine(Path.GetTempPath(), $"xmpp-haproxy-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        int c2s = TestServer.FreePort(), tls = TestServer.FreePort();
        File.WriteAllText(Path.Combine(root, "haproxy.cfg"), Config(root, backends, c2s, tls, (int)interval.TotalMilliseconds, fall));
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        foreach (var a in new[] { "-f", Path.Combine(root, "haproxy.cfg"), "-db" }) info.ArgumentList.Add(a);
        var instance = new HaproxyInstance(root, Process.Start(info)!, c2s, tls, interval);
        File.WriteAllText(Path.Combine(root, "haproxy.pid"), instance.Pid.ToString());
        AppDomain.CurrentDomain.ProcessExit += (_, _) => instance.Dispose();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            if (instance._process.HasExited) throw new InvalidOperationException("haproxy did not start:\n" + instance.Log);
            if (File.Exists(Path.Combine(root, "admin.sock")) && await instance.TryCommandAsync("show info") is { } info2 && info2.Contains("Pid:"))
                return instance;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("haproxy did not open its admin socket:\n" + instance.Log);
            await Task.Delay(50);
        }
    }

    private static string Config(string root, IReadOnlyList<HaproxyBackend> backends, int c2s, int tls, int inter, int fall)
    {
        var cfg = new StringBuilder($"""
            global
                log stdout format raw local0 info
                stats socket {root}/admin.sock mode 600 level admin
                maxconn 2000

            defaults
                mode tcp
                log global
                option tcplog
                option redispatch
                retries 2
                timeout connect 2s
                timeout client 10m
                timeout server 10m
                timeout check 2s
                default-server inter {inter}ms fastinter {inter}ms downinter {inter}ms fall {fall} rise 2 source {SourceAddress} send-proxy-v2 check-send-proxy check-ssl verify none

            frontend c2s
                bind 127.0.0.1:{c2s}
                default_backend c2s

            frontend c2s_tls
                bind 127.0.0.1:{tls}
                default_backend c2s_tls

            """);
        foreach (var (name, port) in new[] { ("c2s", (Func<HaproxyBackend, int>)(b => b.C2sPort)), ("c2s_tls", b => b.C2sTlsPort) })
        {
            cfg.Append($"""
                backend {name}
                    balance leastconn
                    option httpchk
                    http-check send meth GET uri /ready ver HTTP/1.1 hdr Host localhost
                    http-check expect status 200

                """);
            foreach (var b in backends)
                cfg.Append($"    server {b.Name} 127.0.0.1:{port(b)} check port {b.HttpPort}\n");
            cfg.Append('\n');
        }
        return cfg.ToString();
    }

    /// One admin socket command and its answer, or null when the socket does not answer.
    private async Task<string?> TryCommandAsync(string command)
    {
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(Path.Combine(_root, "admin.sock")), cts.Token);
            await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\n"), SocketFlags.None, cts.Token);
            var answer = new MemoryStream();
            var buffer = new byte[8192];
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0) answer.Write(buffer, 0, n);
            return Encoding.ASCII.GetString(answer.ToArray());
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            return null;
        }
    }

    /// The health state of each server of a backend as HAProxy's statistics show it ("UP", "DOWN", "UP 1/2", ...).
    public Task<Dictionary<string, string>> ServerStatesAsync(string backend = "c2s") => StatAsync(backend, "status");

    /// One column of HAProxy's statistics (show stat) for each server of a backend: "scur" is its open connections.
    public async Task<Dictionary<string, string>> StatAsync(string backend, string column)
    {
        var csv = await TryCommandAsync("show stat") ?? throw new InvalidOperationException("haproxy's admin socket did not answer:\n" + Log);
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var columns = lines[0].TrimStart('#', ' ').Split(',');
        int proxy = Array.IndexOf(columns, "pxname"), server = Array.IndexOf(columns, "svname"), wanted = Array.IndexOf(columns, column);
        return lines.Skip(1).Select(l => l.Split(','))
            .Where(f => f.Length > wanted && f[proxy] == backend && f[server] is not ("BACKEND" or "FRONTEND"))
            .ToDictionary(f => f[server], f => f[wanted]);
    }

    /// The server of a backend that holds exactly one open connection (the test's only client there).
    public async Task<string> ServerHoldingOneConnectionAsync(string backend = "c2s")
    {
        string? found = null;
        await Wait.UntilAsync(async () => (found = (await StatAsync(backend, "scur")).Where(kv => kv.Value == "1").Select(kv => kv.Key).SingleOrDefault()) is not null,
            TimeSpan.FromSeconds(5));
        return found ?? throw new InvalidOperationException("no server of " + backend + " holds one connection:\n" + string.Join(", ", await StatAsync(backend, "scur")));
    }

    /// Waits until a server of both backends has the state (its first word: "UP" or "DOWN"); the time it took.
    public async Task<TimeSpan> WaitForStateAsync(string server, string state, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var c2s = await ServerStatesAsync("c2s");
            var tls = await ServerStatesAsync("c2s_tls");
            if (c2s.GetValueOrDefault(server, "").Split(' ')[0] == state && tls.GetValueOrDefault(server, "").Split(' ')[0] == state) return clock.Elapsed;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"{server} is not {state} after {timeout}: c2s {string.Join(", ", c2s)}; c2s_tls {string.Join(", ", tls)}\n{Log}");
            await Task.Delay(25);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        if (!_process.HasExited)
        {
            kill(_process.Id, 15);
            if (!_process.WaitForExit(5_000)) { kill(_process.Id, 9); _process.WaitForExit(5_000); }
        }
        _process.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void StopLeftovers() => PrivateInstances.StopLeftovers("xmpp-haproxy", "haproxy.pid", "haproxy");

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
