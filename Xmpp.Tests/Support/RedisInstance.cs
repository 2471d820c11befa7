using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Tests.Support;

/// A private Redis server for one test fixture: Debian's redis-server (test.sh installs the package), its own free
/// loopback port, a temporary folder, a password, no persistence. Never the system service. Stopped by its PID
/// (Stop, or at process exit). A test may stop and start it again on the same port (Restart) or freeze it.
public sealed class RedisInstance : IDisposable
{
    private readonly string _root;
    private Process? _process;
    private int _stopped;

    private RedisInstance(string root, int port, string password)
    {
        _root = root;
        Port = port;
        Password = password;
    }

    public int Port { get; }

    public string Password { get; }

    public int Pid => _process?.Id ?? 0;

    /// The StackExchange.Redis configuration string for this instance.
    public string ConnectionString => $"127.0.0.1:{Port},password={Password},abortConnect=false";

    public static async Task<RedisInstance> StartAsync()
    {
        StopLeftovers();
        var root = Path.Combine(Path.GetTempPath(), $"xmpp-redis-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        var instance = new RedisInstance(root, TestServer.FreePort(), Convert.ToHexString(RandomNumberGenerator.GetBytes(12)));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => instance.Stop();
        await instance.StartServerAsync();
        return instance;
    }

    private async Task StartServerAsync()
    {
        var binary = File.Exists("/usr/bin/redis-server") ? "/usr/bin/redis-server"
            : throw new InvalidOperationException("redis-server not found: run ./test.sh, which installs Debian's redis-server package.");
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--dir", _root, "--requirepass", Password,
                     "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes", "--logfile", "", "--pidfile", Path.Combine(_root, "redis.pid") })
            info.ArgumentList.Add(a);
        var log = new StringBuilder();
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"redis-server did not start:\n{log}");
            if (await PingAsync()) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"redis-server did not answer PING:\n{log}");
            await Task.Delay(50);
        }
    }

    // AUTH and PING over a plain socket: ready when it answers +PONG.
    private async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port);
            var stream = client.GetStream();
            var request = Encoding.ASCII.GetBytes($"AUTH {Password}\r\nPING\r\n");
            await stream.WriteAsync(request);
            var buffer = new byte[64];
            var text = new StringBuilder();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            while (!text.ToString().Contains("PONG", StringComparison.Ordinal))
            {
                int n = await stream.ReadAsync(buffer, timeout.Token);
                if (n == 0) return false;
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
            return true;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// Stops the server (SIGKILL when crash, else SIGTERM) and starts a new one on the same port: its data is gone, as
    /// after a restart without persistence.
    public async Task RestartAsync(bool crash = false)
    {
        StopProcess(crash ? 9 : 15);
        await StartServerAsync();
    }

    /// SIGSTOP (true) or SIGCONT (false): the server holds its connections but answers nothing.
    public void Freeze(bool frozen)
    {
        if (_process is { HasExited: false } p) kill(p.Id, frozen ? 19 : 18);
    }

    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        StopProcess(15);
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose() => Stop();

    private void StopProcess(int signal)
    {
        var p = _process;
        if (p is null || p.HasExited) return;
        kill(p.Id, 18);
        kill(p.Id, signal);
        if (!p.WaitForExit(10_000)) { kill(p.Id, 9); p.WaitForExit(5_000); }
    }

    // redis-server rewrites its command line (address and port only), so its pid file names it.
    private static void StopLeftovers() => PrivateInstances.StopLeftovers("xmpp-redis", "redis.pid", "redis-server");

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
