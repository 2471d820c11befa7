using System.Globalization;
using System.Runtime.CompilerServices;
using Xmpp.Server.Hosting;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;
using Xmpp.Storage.Postgres;

namespace Xmpp.Server.Cli;

/// xmppd migrate --to postgresql CONNSTRING | --to embedded DIR: copies everything the configured storage holds into
/// the other kind (StorageMigration), then prints per store how many entries each side holds; exit 0 only when every
/// count matches. Run with the server stopped: an embedded data folder, source or target, is held under its lock for the
/// whole run, and a folder a running server holds is refused. Uploaded files are not copied: they stay in the upload
/// folder, which does not depend on the storage. CONNSTRING "-" reads the connection string from stdin, so the
/// password need not appear in the process list.
public static class MigrateCommand
{
    public const string KillAfterVariable = "XMPP_MIGRATE_TEST_KILL_AFTER";

    public static async Task<int> RunAsync(IReadOnlyList<string> words, XmppServerOptions options)
    {
        if (words.Count != 4 || words[1] != "--to" || words[2] is not ("postgresql" or "embedded"))
            return AdminCommands.Fail("migrate: usage is 'migrate --to postgresql CONNSTRING' or 'migrate --to embedded DIR'");
        var toPostgres = words[2] == "postgresql";
        var destination = words[3] == "-" && toPostgres ? Console.In.ReadLine() ?? "" : words[3];
        if (toPostgres && PostgresStorage.ConnectionStringProblem(destination) is { } problem)
            return AdminCommands.Fail("migrate: the connection string is not valid: " + problem);
        if (!toPostgres) destination = Path.GetFullPath(destination);
        var fromPostgres = options.Storage.IsPostgreSql;
        if (toPostgres == fromPostgres && (toPostgres ? destination == options.Storage.ConnectionString
                                                      : destination == Path.GetFullPath(options.DataDir)))
            return AdminCommands.Fail("migrate: the target is the configured storage itself");

        var locks = new List<DataDirLock>();
        try
        {
            foreach (var folder in new[] { fromPostgres ? null : Path.GetFullPath(options.DataDir), toPostgres ? null : destination })
            {
                if (folder is null) continue;
                if (!DataDirLock.TryAcquire(folder, out var held, out var holder))
                    return AdminCommands.Fail($"migrate: the data folder {folder} is in use by {(holder is { } pid ? "PID " + pid : "another process")}: "
                        + "stop the server before migrating; nothing was changed");
                locks.Add(held!);
            }
            var sourceName = fromPostgres ? "PostgreSQL at " + PostgresStorage.Describe(options.Storage.ConnectionString) : "embedded in " + Path.GetFullPath(options.DataDir);
            var targetName = toPostgres ? "PostgreSQL at " + PostgresStorage.Describe(destination) : "embedded in " + destination;
            Console.WriteLine($"migrating from {sourceName} to {targetName}");
            await using var source = await OpenAsync(fromPostgres, fromPostgres ? options.Storage.ConnectionString : Path.GetFullPath(options.DataDir));
            await using var target = await OpenAsync(toPostgres, destination);
            var migration = new StorageMigration(source, target, Console.Out) { ArchiveRecordQueued = KillHook() };
            await migration.CopyAsync();
            var counts = await migration.CountAsync();
            Console.WriteLine($"{"store",-24} {"source",12} {"target",12}");
            foreach (var count in counts)
                Console.WriteLine($"{count.Store,-24} {count.Source,12} {count.Target,12}{(count.Matches ? "" : "  MISMATCH")}");
            if (!toPostgres) CopySecrets(Path.GetFullPath(options.DataDir), destination);
            var uploads = Path.GetFullPath(options.Upload.Directory is { Length: > 0 } d ? d : Path.Combine(options.DataDir, "uploads"));
            if (counts.All(c => c.Matches))
            {
                Console.WriteLine(toPostgres
                    ? "migrated: every count matches. Start the server with Xmpp:Storage:Provider postgresql and this connection string, "
                      + "keeping the same data folder: uploaded files, upload.key and fast-token.key stay in it"
                    : $"migrated: every count matches. Start the server with Xmpp:Storage:Provider embedded and --data-dir {destination}; "
                      + $"uploaded files stay in {uploads}: set Xmpp:Upload:Directory to it, or move it to {Path.Combine(destination, "uploads")}");
                return 0;
            }
            return AdminCommands.Fail("migrate: the counts differ (is the source in use, or did the target hold other data?); run the command again");
        }
        finally
        {
            foreach (var held in locks) held.Dispose();
        }
    }

    // The keys that sign upload links and FAST tokens live in the data folder whatever the storage; a new data folder
    // gets the old ones, so links and tokens handed out before the migration stay valid. An existing key is kept.
    private static readonly string[] Secrets = ["upload.key", "fast-token.key"];

    private static void CopySecrets(string from, string to)
    {
        foreach (var name in Secrets)
            if (File.Exists(Path.Combine(from, name)) && !File.Exists(Path.Combine(to, name)))
                BackupFiles.Copy(Path.Combine(from, name), Path.Combine(to, name));
    }

    private static async Task<IStorage> OpenAsync(bool postgres, string where) =>
        postgres ? await OpenPostgresAsync(where) : new LiteDbStorage(where);

    // Like StorageFactory: the PostgreSQL path in a method of its own, so Npgsql is loaded only when it is used.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<IStorage> OpenPostgresAsync(string connectionString) => await PostgresStorage.OpenAsync(connectionString);

    // For the tests of an interrupted migration: the process kills itself (SIGKILL) once that many archive records
    // were queued, which leaves the target as a kill at that moment would.
    private static Action<long>? KillHook()
    {
        if (!long.TryParse(Environment.GetEnvironmentVariable(KillAfterVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var after))
            return null;
        return queued =>
        {
            if (queued >= after) System.Diagnostics.Process.GetCurrentProcess().Kill();
        };
    }
}
