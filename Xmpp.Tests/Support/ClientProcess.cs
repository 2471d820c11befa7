using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Xmpp.Tests.Support;

// An external client program run by an interop test: it captures stdout lines (each JSON line parsed as an
// event), stderr and the exit code, and kills the whole process tree when the time limit passes.
public sealed class ClientProcess : IDisposable
{
    // The Debian interpreter: python3-slixmpp and python3-nbxmpp are installed for it, not for a pyenv one.
    public const string DebianPython = "/usr/bin/python3";

    // The time limit the client scripts get through --timeout; the process itself is killed a little later.
    public static readonly TimeSpan DefaultScriptTimeout = TimeSpan.FromSeconds(15);

    private static readonly TimeSpan KillGrace = TimeSpan.FromSeconds(5);
    private static readonly ConcurrentDictionary<string, string> Checked = new();

    private readonly Process _process;
    private readonly object _gate = new();
    private readonly List<string> _stdout = [];
    private readonly List<JsonElement> _events = [];
    private readonly StringBuilder _stderr = new();
    private readonly List<(Func<JsonElement, bool> Match, TaskCompletionSource<JsonElement> Done)> _waiters = [];
    private readonly Task _completion;
    private readonly CancellationTokenSource _killTimer;
    private volatile bool _timedOut;

    private ClientProcess(Process process, string commandLine, TimeSpan timeout)
    {
        _process = process;
        CommandLine = commandLine;
        _killTimer = new CancellationTokenSource();
        var stdout = Task.Run(() => PumpAsync(process.StandardOutput, OnStdoutLine));
        var stderr = Task.Run(() => PumpAsync(process.StandardError, line =>
        {
            lock (_gate) _stderr.AppendLine(line);
        }));
        _ = KillAfterAsync(timeout, _killTimer.Token);
        _completion = CompleteAsync(stdout, stderr);
    }

    public string CommandLine { get; }

    // True when the process outlived its time limit and was killed.
    public bool TimedOut => _timedOut;

    public bool HasExited => _completion.IsCompleted;

    // The exit code; only meaningful after WaitForExitAsync has returned.
    public int ExitCode => _process.HasExited ? _process.ExitCode : -1;

    public IReadOnlyList<string> StdoutLines
    {
        get { lock (_gate) return _stdout.ToArray(); }
    }

    public IReadOnlyList<JsonElement> Events
    {
        get { lock (_gate) return _events.ToArray(); }
    }

    public string Stderr
    {
        get { lock (_gate) return _stderr.ToString(); }
    }

    // Starts program with args; stdin, when given, is written and then closed (go-sendxmpp reads its message there).
    public static ClientProcess Start(string program, IEnumerable<string> args, TimeSpan timeout, string? stdin = null)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        // Unbuffered Python output so events arrive while the client runs, not at exit.
        info.Environment["PYTHONUNBUFFERED"] = "1";
        var commandLine = program + " " + string.Join(" ", info.ArgumentList.Select(Quote));
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + commandLine);
        var client = new ClientProcess(process, commandLine, timeout);
        try
        {
            if (stdin is not null) process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The program exited before reading its input; its exit code and stderr tell why.
        }
        return client;
    }

    // Runs program to completion (or until killed at the time limit).
    public static async Task<ClientProcess> RunAsync(string program, IEnumerable<string> args, TimeSpan timeout, string? stdin = null)
    {
        var p = Start(program, args, timeout, stdin);
        await p.WaitForExitAsync();
        return p;
    }

    // Starts one of the interop client scripts (Interop/clients/*.py) for an account on server.
    public static ClientProcess StartScript(string script, string action, string jid, string password, TestServer server,
        bool directTls = false, IEnumerable<string>? extra = null, TimeSpan? scriptTimeout = null)
    {
        RequireProgram(DebianPython, "python3");
        var limit = scriptTimeout ?? DefaultScriptTimeout;
        var args = new List<string>
        {
            ClientScript(script), action,
            "--jid", jid, "--password", password,
            "--host", server.Host,
            "--port", (directTls ? server.C2sTlsPort : server.C2sPort).ToString(),
            "--timeout", ((int)Math.Ceiling(limit.TotalSeconds)).ToString(),
        };
        if (directTls) args.Add("--direct-tls");
        if (extra is not null) args.AddRange(extra);
        return Start(DebianPython, args, limit + KillGrace);
    }

    // Runs one of the interop client scripts to completion.
    public static async Task<ClientProcess> RunScriptAsync(string script, string action, string jid, string password,
        TestServer server, bool directTls = false, IEnumerable<string>? extra = null, TimeSpan? scriptTimeout = null)
    {
        var p = StartScript(script, action, jid, password, server, directTls, extra, scriptTimeout);
        await p.WaitForExitAsync();
        return p;
    }

    // Full path of an interop client script copied next to the test assembly.
    public static string ClientScript(string fileName)
    {
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "Interop", "clients", fileName);
        if (!File.Exists(path))
            Assert.Fail($"Interop client script {path} is missing: Xmpp.Tests.csproj must copy Interop/clients/** to the output.");
        return path;
    }

    // Fails the test (never skips it) when a program is not installed; returns its full path.
    public static string RequireProgram(string nameOrPath, string debianPackage)
    {
        if (Checked.TryGetValue("program:" + nameOrPath, out var known)) return known;
        string? found = null;
        if (Path.IsPathRooted(nameOrPath))
        {
            if (File.Exists(nameOrPath)) found = nameOrPath;
        }
        else
        {
            var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
            found = dirs.Select(d => Path.Combine(d, nameOrPath)).FirstOrDefault(File.Exists);
        }
        if (found is null)
            Assert.Fail($"Interop test needs '{nameOrPath}', which is not installed. Install it with: apt-get install -y {debianPackage}");
        Checked[("program:" + nameOrPath)] = found!;
        return found!;
    }

    // Fails the test (never skips it) when the Debian Python cannot import module.
    public static void RequirePythonModule(string module, string debianPackage)
    {
        RequireProgram(DebianPython, "python3");
        if (Checked.ContainsKey("python:" + module)) return;
        var probe = Start(DebianPython, ["-c", "import " + module], TimeSpan.FromSeconds(30));
        probe.WaitForExitAsync().GetAwaiter().GetResult();
        if (probe.ExitCode != 0)
            Assert.Fail($"Interop test needs the Python module '{module}' for {DebianPython}. " +
                        $"Install it with: apt-get install -y {debianPackage}\n{probe.Stderr}");
        Checked["python:" + module] = module;
    }

    // Waits for the process to end; the time limit given at start kills it (and its children) if needed.
    public async Task WaitForExitAsync() => await _completion;

    // Waits for the first event named name (and matching where, if given); fails the test if the process ends first
    // or nothing arrives within the time limit.
    public async Task<JsonElement> WaitForEventAsync(string name, Func<JsonElement, bool>? where = null, TimeSpan? within = null)
    {
        bool Match(JsonElement e) => Text(e, "event") == name && (where is null || where(e));
        var done = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            foreach (var e in _events)
                if (Match(e)) return e;
            _waiters.Add((Match, done));
        }
        var limit = Task.Delay(within ?? DefaultScriptTimeout + KillGrace);
        var first = await Task.WhenAny(done.Task, _completion, limit);
        if (done.Task.IsCompleted) return await done.Task;
        lock (_gate)
        {
            // The event may have been the last line before exit.
            foreach (var e in _events)
                if (Match(e)) return e;
        }
        Assert.Fail((first == limit ? $"No '{name}' event in time.\n" : $"The client ended without a '{name}' event.\n") + Describe());
        throw new InvalidOperationException("unreachable");
    }

    // All events with the given name, in the order printed.
    public IReadOnlyList<JsonElement> EventsNamed(string name) => Events.Where(e => Text(e, "event") == name).ToArray();

    // A string property of an event, or null when it is absent or JSON null.
    public static string? Text(JsonElement e, string property) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : null;

    // A boolean property of an event; false when absent.
    public static bool Flag(JsonElement e, string property) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.True;

    // Everything known about the run, for assertion messages.
    public string Describe()
    {
        var state = !HasExited ? "still running" : TimedOut ? $"killed after its time limit (exit {ExitCode})" : $"exit {ExitCode}";
        return $"command: {CommandLine}\n{state}\nstdout:\n{string.Join("\n", StdoutLines)}\nstderr:\n{Stderr}";
    }

    public void Dispose()
    {
        _killTimer.Cancel();
        KillTree();
        _process.Dispose();
        _killTimer.Dispose();
    }

    private async Task CompleteAsync(Task stdout, Task stderr)
    {
        await _process.WaitForExitAsync();
        await Task.WhenAll(stdout, stderr);
        _killTimer.Cancel();
    }

    private async Task KillAfterAsync(TimeSpan timeout, CancellationToken cancel)
    {
        try
        {
            await Task.Delay(timeout, cancel);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        _timedOut = true;
        KillTree();
    }

    private void KillTree()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static async Task PumpAsync(StreamReader reader, Action<string> onLine)
    {
        while (await reader.ReadLineAsync() is { } line) onLine(line);
    }

    private void OnStdoutLine(string line)
    {
        JsonElement? parsed = null;
        var trimmed = line.Trim();
        if (trimmed.StartsWith('{'))
        {
            try
            {
                using var doc = JsonDocument.Parse(trimmed);
                parsed = doc.RootElement.Clone();
            }
            catch (JsonException)
            {
                // Not an event; it stays in StdoutLines for the failure message.
            }
        }
        List<TaskCompletionSource<JsonElement>> wake = [];
        lock (_gate)
        {
            _stdout.Add(line);
            if (parsed is { } e)
            {
                _events.Add(e);
                for (int i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (!_waiters[i].Match(e)) continue;
                    wake.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }
        foreach (var w in wake) w.TrySetResult(parsed!.Value);
    }

    private static string Quote(string a) => a.Length > 0 && a.All(c => !char.IsWhiteSpace(c) && c != '"' && c != '\'') ? a : "'" + a.Replace("'", "'\\''") + "'";
}
