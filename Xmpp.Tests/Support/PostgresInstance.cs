using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Xmpp.Tests.Support;

/// A private PostgreSQL server for the tests, started on first use and shared by every test of the run: Debian's
/// binaries (test.sh installs the postgresql package), a cluster made by initdb in a temporary folder, its own free
/// loopback port and socket folder, password authentication, fsync on as in production. PostgreSQL refuses to run
/// as root, so when the tests run as root (CI) it runs as the unprivileged user xmpptest, created if missing.
/// Never the system service. Stopped by its PID when the run ends (PostgresTeardown, and at process exit).
public sealed class PostgresInstance
{
    private const string User = "xmpptest";
    private static readonly Lazy<Task<PostgresInstance>> Shared = new(() => Task.Run(StartAsync));
    private static int _databases;

    private readonly string _root;
    private readonly string _bin;
    private readonly bool _asRoot;
    private int _pid;
    private int _stopped;

    private PostgresInstance(string root, int port, string password, string bin, bool asRoot)
    {
        _root = root;
        Port = port;
        Password = password;
        _bin = bin;
        _asRoot = asRoot;
    }

    public int Port { get; }

    public string Password { get; }

    public string DataDirectory => Path.Combine(_root, "data");

    public static Task<PostgresInstance> GetAsync() => Shared.Value;

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Password={Password};Database={database};Timeout=10";

    /// A new empty database named after prefix; returns its name.
    public async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = $"{new string(prefix.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray())}_{Interlocked.Increment(ref _databases)}";
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }

    /// Deletes every row the server stored in a database, keeping its schema: dropping and migrating it again took
    /// about half a second per test here (DDL with fsync on), deleting a test's few rows takes milliseconds.
    public async Task EmptyDatabaseAsync(string database)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(database));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            DO $$
            DECLARE t text;
            BEGIN
                FOR t IN SELECT tablename FROM pg_tables
                         WHERE schemaname = 'public' AND tablename NOT IN ('schema_version', 'archive_collections') LOOP
                    EXECUTE 'DELETE FROM ' || quote_ident(t);
                END LOOP;
            END $$
            """, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<PostgresInstance> StartAsync()
    {
        StopLeftovers();
        var instance = await CreateAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => instance.Stop();
        return instance;
    }

    /// An instance of its own, for a test that stops and restarts the database; the caller stops it (Stop).
    public static async Task<PostgresInstance> StartPrivateAsync()
    {
        var instance = await CreateAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => instance.Stop();
        return instance;
    }

    private static async Task<PostgresInstance> CreateAsync()
    {
        var bin = FindBinaries();
        var root = Path.Combine(Path.GetTempPath(), $"xmpp-pg-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        var asRoot = geteuid() == 0;
        if (asRoot)
        {
            if (Run("id", ["-u", User]).ExitCode != 0)
                Check(Run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", User]), "useradd");
        }
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        var passwordFile = Path.Combine(root, "password");
        File.WriteAllText(passwordFile, password + "\n");
        if (asRoot)
            Check(Run("chown", ["-R", User, root]), "chown");
        Check(RunAs(asRoot, Path.Combine(bin, "initdb"),
            ["-D", Path.Combine(root, "data"), "-U", "postgres", "--pwfile", passwordFile, "--auth", "scram-sha-256",
             "-E", "UTF8", "--no-locale", "--no-sync"]), "initdb");
        File.Delete(passwordFile);

        var instance = new PostgresInstance(root, TestServer.FreePort(), password, bin, asRoot);
        await instance.StartServerAsync();
        return instance;
    }

    // Starts postgres on the cluster and waits until it accepts a login.
    private async Task StartServerAsync()
    {
        var start = Command(_asRoot, Path.Combine(_bin, "postgres"),
            ["-D", DataDirectory, "-p", Port.ToString(), "-k", _root, "-c", "listen_addresses=127.0.0.1",
             "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=32MB"]);
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        var log = new StringBuilder();
        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        // Ready when it accepts a login; its own PID (not runuser's) is the first line of postmaster.pid.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var probe = ConnectionString("postgres") + ";Pooling=false";
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"PostgreSQL did not start:\n{log}");
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync();
                break;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
        _pid = int.Parse(File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).First());
    }

    /// Stops the server as a crash would (SIGQUIT: immediate shutdown, no checkpoint; the next start recovers from
    /// the WAL), or cleanly (SIGINT: fast shutdown); the cluster stays for StartAgainAsync.
    public void StopServer(bool crash)
    {
        StopPostmaster(_pid, DataDirectory, crash ? 3 : 2);
    }

    /// Starts the server again on the same cluster and port.
    public Task StartAgainAsync() => StartServerAsync();

    /// Stops the shared instance if this run started it.
    public static void StopShared()
    {
        if (Shared.IsValueCreated && Shared.Value.IsCompletedSuccessfully)
            Shared.Value.Result.Stop();
    }

    /// A fast shutdown (SIGINT: roll back open transactions, checkpoint, exit), by PID; then the folder goes.
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        StopPostmaster(_pid, DataDirectory, 2);
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void StopPostmaster(int pid, string dataDirectory, int signal)
    {
        if (!IsPostmaster(pid, dataDirectory)) return;
        kill(pid, signal);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Directory.Exists($"/proc/{pid}") && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        if (Directory.Exists($"/proc/{pid}"))
            kill(pid, 9);
    }

    // The PID still belongs to the postgres of that folder (PIDs are reused).
    private static bool IsPostmaster(int pid, string dataDirectory)
    {
        try
        {
            var commandLine = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
            return commandLine.Contains("postgres", StringComparison.Ordinal) && commandLine.Contains(dataDirectory, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    // Instances of earlier runs whose test process died without stopping them (killed, crashed).
    private static void StopLeftovers()
    {
        foreach (var root in Directory.GetDirectories(Path.GetTempPath(), "xmpp-pg-*"))
        {
            var parts = Path.GetFileName(root).Split('-');
            if (parts.Length < 4 || !int.TryParse(parts[2], out var owner) || Directory.Exists($"/proc/{owner}")) continue;
            var data = Path.Combine(root, "data");
            var pidFile = Path.Combine(data, "postmaster.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var pid))
                StopPostmaster(pid, data, 2);
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static string FindBinaries()
    {
        var versions = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Where(d => File.Exists(Path.Combine(d, "bin", "initdb")) && int.TryParse(Path.GetFileName(d), out _))
                .OrderByDescending(d => int.Parse(Path.GetFileName(d)))
                .ToList()
            : [];
        return versions.Count > 0
            ? Path.Combine(versions[0], "bin")
            : throw new InvalidOperationException("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: run ./test.sh, which installs Debian's postgresql package.");
    }

    private static ProcessStartInfo Command(bool asRoot, string program, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(asRoot ? "runuser" : program) { UseShellExecute = false };
        if (asRoot)
            foreach (var a in new[] { "-u", User, "--", program })
                info.ArgumentList.Add(a);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        // The cluster's messages in English whatever the machine's locale, and no inherited PG* settings.
        info.Environment["LC_ALL"] = "C";
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList())
            info.Environment.Remove(key);
        return info;
    }

    private static (int ExitCode, string Output) RunAs(bool asRoot, string program, IEnumerable<string> args) =>
        Run(Command(asRoot, program, args));

    private static (int ExitCode, string Output) Run(string program, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(program) { UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        return Run(info);
    }

    private static (int ExitCode, string Output) Run(ProcessStartInfo info)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static void Check((int ExitCode, string Output) result, string what)
    {
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"{what} failed ({result.ExitCode}): {result.Output}");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [DllImport("libc")]
    private static extern uint geteuid();
}
