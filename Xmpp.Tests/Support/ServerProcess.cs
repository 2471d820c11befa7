using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Xmpp.Tests.Support;

/// The real server binary (xmppd) run as a separate process, for the admin CLI and crash tests.
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Output { get { lock (_output) return _output.ToString(); } }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// Path of the built server assembly, copied next to the tests by the project reference.
    public static string ServerDll
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "xmppd.dll");
            if (!File.Exists(path) || !File.Exists(Path.Combine(AppContext.BaseDirectory, "xmppd.runtimeconfig.json")))
                throw new FileNotFoundException("xmppd.dll with its runtimeconfig was not found next to the tests", path);
            return path;
        }
    }

    private static ProcessStartInfo StartInfo(IEnumerable<string> args, string workingDir, IReadOnlyDictionary<string, string>? environment = null,
        IReadOnlyList<string>? wrapper = null)
    {
        var psi = new ProcessStartInfo(wrapper?[0] ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDir,
        };
        if (wrapper is not null)
        {
            foreach (var w in wrapper.Skip(1)) psi.ArgumentList.Add(w);
            psi.ArgumentList.Add("dotnet");
        }
        psi.ArgumentList.Add(ServerDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        if (environment is not null)
            foreach (var (key, value) in environment)
                psi.Environment[key] = value;
        return psi;
    }

    /// The options every test of a real xmppd starts from: domain localhost on loopback, the given client ports, the
    /// data and certificate folders, no HTTP listener, warnings only.
    public static string[] LoopbackArgs(int c2sPort, int tlsPort, string dataDir, string certDir) =>
    [
        "--domain", "localhost", "--c2s-port", c2sPort.ToString(), "--c2s-tls-port", tlsPort.ToString(),
        "--data-dir", dataDir, "--cert-dir", certDir, "--listen", "127.0.0.1",
        "--http-port", "0", "--log-level", "Warning",
    ];

    /// Runs an admin command to completion and returns its exit code and output.
    public static Task<(int ExitCode, string Output)> RunAsync(string workingDir, params string[] args) => RunAsync(workingDir, null, args);

    /// The same with environment variables set for the command (such as XMPP__STORAGE__CONNECTIONSTRING).
    public static async Task<(int ExitCode, string Output)> RunAsync(string workingDir, IReadOnlyDictionary<string, string>? environment,
        params string[] args)
    {
        using var p = Process.Start(StartInfo(args, workingDir, environment))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout + await stderr);
    }

    /// Starts `xmppd run` and waits until the STARTTLS port accepts connections.
    public static Task<ServerProcess> StartAsync(string workingDir, int c2sPort, params string[] args) =>
        StartWrappedAsync(null, workingDir, c2sPort, null, args);

    public static Task<ServerProcess> StartAsync(string workingDir, int c2sPort, IReadOnlyDictionary<string, string>? environment,
        params string[] args) => StartWrappedAsync(null, workingDir, c2sPort, environment, args);

    /// Starts `wrapper... dotnet xmppd.dll run args...`: the wrapper (a shell in a mount namespace, say) ends with the
    /// command to run. Pid is then the wrapper's.
    public static Task<ServerProcess> StartWrappedAsync(IReadOnlyList<string>? wrapper, string workingDir, int c2sPort, params string[] args) =>
        StartWrappedAsync(wrapper, workingDir, c2sPort, null, args);

    private static async Task<ServerProcess> StartWrappedAsync(IReadOnlyList<string>? wrapper, string workingDir, int c2sPort,
        IReadOnlyDictionary<string, string>? environment, string[] args)
    {
        var all = new List<string> { "run" };
        all.AddRange(args);
        // Federation stays on (the shipped default) but on a free port unless the test chose one: the default 5269 is
        // shared by every server process the suite starts, and a second one would fail to bind it.
        if (!args.Any(a => a.Contains("S2s:Port", StringComparison.OrdinalIgnoreCase) || a.Contains("S2s:Enabled", StringComparison.OrdinalIgnoreCase)))
            all.AddRange(["--Xmpp:S2s:Port", TestServer.FreePort().ToString()]);
        var process = new ServerProcess(Process.Start(StartInfo(all, workingDir, environment, wrapper))!);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException("xmppd exited at start:\n" + process.Output);
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", c2sPort);
                return process;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        await process.DisposeAsync();
        throw new TimeoutException("xmppd did not start listening:\n" + process.Output);
    }

    /// Waits for the process (a wrapper included) to exit by itself.
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// SIGKILL: no shutdown code runs, like a power cut of the process.
    public void KillHard()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    /// SIGTERM: the graceful path (system-shutdown to clients, storage flushed).
    public async Task<int> TerminateAsync()
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()]);
            kill!.WaitForExit();
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
