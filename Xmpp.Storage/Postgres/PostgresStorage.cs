using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Xmpp.Storage.Postgres;

// Every store in one PostgreSQL database (Xmpp:Storage:Provider = postgresql): for deployments that already run and
// back up PostgreSQL, and for several nodes sharing their data. Reads run on pooled connections from the caller's
// task; every write goes through the one group-commit writer (PostgresWriter), whose tasks complete after the commit,
// so a read after an awaited write sees it and an acknowledgement that waits for FlushAsync promises what it says.
public sealed partial class PostgresStorage : IStorage, IStorageInventory
{
    public static readonly TimeSpan DefaultPurgeInterval = TimeSpan.FromSeconds(30);

    private readonly NpgsqlDataSource _source;
    private readonly PostgresWriter _writer;

    // Write groups run again after PostgreSQL broke a deadlock with another process's transaction (tests).
    internal long WriteConflicts => _writer.Conflicts;
    private readonly PostgresArchivePurger _purger;
    private readonly Dictionary<string, PostgresArchiveStore> _archives = new(StringComparer.Ordinal);
    private int _disposed;

    private PostgresStorage(NpgsqlDataSource source, ILogger logger, TimeSpan purgeInterval)
    {
        _source = source;
        _writer = new PostgresWriter(source, logger);
        Accounts = new PostgresAccountStore(source, _writer);
        Rosters = new PostgresRosterStore(source, _writer);
        KeyValue = new PostgresKeyValueStore(source, _writer);
        Uploads = new PostgresUploadStore(source, _writer);
        RoomFence = new PostgresRoomFence(this, _writer);
        _purger = new PostgresArchivePurger(source, logger, ArchiveNames, purgeInterval);
    }

    // Connects, creates or upgrades the schema, and opens the stores; a StorageOpenException says in one line why not.
    public static async Task<PostgresStorage> OpenAsync(string connectionString, ILogger? logger = null, TimeSpan? purgeInterval = null)
    {
        logger ??= NullLogger.Instance;
        NpgsqlDataSource source;
        try
        {
            source = NpgsqlDataSource.Create(WithPreparedStatements(connectionString));
        }
        catch (ArgumentException ex)
        {
            // The message names the offending keyword, never the value.
            throw new StorageOpenException($"the PostgreSQL connection string is not valid: {ex.Message}", ex);
        }
        try
        {
            var before = await PostgresSchema.MigrateAsync(source, logger).ConfigureAwait(false);
            logger.LogInformation("Storage: PostgreSQL at {Server}, schema version {Version}{Was}", Describe(connectionString),
                PostgresSchema.Version, before == PostgresSchema.Version ? "" : $" (was {before})");
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            await source.DisposeAsync().ConfigureAwait(false);
            throw new StorageOpenException($"cannot use PostgreSQL at {Describe(connectionString)}: {ex.Message}", ex);
        }
        catch
        {
            await source.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return new PostgresStorage(source, logger, purgeInterval ?? DefaultPurgeInterval);
    }

    // Statements the server runs again and again (the writer's archive insert, a page and its count) are prepared on
    // each connection once they recur, unless the connection string says otherwise (Max Auto Prepare=0, for a pooler
    // in transaction mode). Planning the archive insert took ~0.9 ms a group, and a group under 1:1 traffic is ~100
    // rows: database CPU per archived row in 128-row groups 39.8 -> 27.1 us (PostgresArchiveMeasurements,
    // bench/results/2026-12-07-postgresql-archiving-profile.md); a MAM page's plan was ~0.6 ms of its ~0.8 ms.
    internal static string WithPreparedStatements(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (connectionString.Contains("auto prepare", StringComparison.OrdinalIgnoreCase)) return connectionString;
        builder.MaxAutoPrepare = 64;
        builder.AutoPrepareMinUsages = 2;
        return builder.ConnectionString;
    }

    // Host, port, database and user: what the log and `xmppd check` may say about a connection string (no password).
    public static string Describe(string connectionString)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString);
            return $"{builder.Host}:{builder.Port}/{builder.Database ?? builder.Username} as {builder.Username}";
        }
        catch (ArgumentException)
        {
            return "(connection string not valid)";
        }
    }

    // Null when Npgsql accepts the connection string; otherwise why not (naming a keyword, never a value).
    public static string? ConnectionStringProblem(string connectionString)
    {
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
            return null;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidCastException)
        {
            return ex.Message;
        }
    }

    // For `xmppd check`: can the server log in, and at which schema version is the database. Changes nothing.
    public static async Task<(bool Ok, string Line)> CheckAsync(string connectionString)
    {
        var where = Describe(connectionString);
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync().ConfigureAwait(false);
            var version = await PostgresSchema.ReadVersionAsync(connection).ConfigureAwait(false);
            return version switch
            {
                null => (true, $"storage: PostgreSQL at {where} (server {connection.PostgreSqlVersion}) is reachable; no schema yet, the server creates version {PostgresSchema.Version} at first start"),
                var v when v > PostgresSchema.Version => (false, $"storage: the PostgreSQL schema at {where} is at version {v}, newer than this server knows ({PostgresSchema.Version})"),
                var v when v < PostgresSchema.Version => (true, $"storage: PostgreSQL at {where} (server {connection.PostgreSqlVersion}), schema version {v}; the server migrates it to {PostgresSchema.Version} at start"),
                var v => (true, $"storage: PostgreSQL at {where} (server {connection.PostgreSqlVersion}), schema version {v}, current"),
            };
        }
        catch (Exception ex) when (ex is NpgsqlException or ArgumentException or System.Net.Sockets.SocketException or TimeoutException)
        {
            return (false, $"storage: cannot connect to PostgreSQL at {where}: {ex.Message}");
        }
    }

    public IAccountStore Accounts { get; }

    // Fenced writes of MUC rooms for a cluster's room hosts (issue 17).
    public IRoomFence RoomFence { get; }

    public IRosterStore Rosters { get; }

    public IKeyValueStore KeyValue { get; }

    public IUploadStore Uploads { get; }

    internal long Commits => _writer.Commits;

    internal NpgsqlDataSource DataSource => _source;

    public IArchiveStore Archive(string collection)
    {
        ArchiveCollectionName.Validate(collection);
        lock (_archives)
        {
            if (_archives.TryGetValue(collection, out var existing))
                return existing;
            // The schema has the server's collections; another gets its table now (idempotent DDL). Nodes of a cluster
            // starting together would race on CREATE TABLE IF NOT EXISTS (a duplicate key in pg_type), so the DDL runs
            // in one transaction under the schema's advisory lock.
            if (!PostgresSchema.Collections.Contains(collection))
            {
                using var connection = _source.OpenConnection();
                using var transaction = connection.BeginTransaction();
                using (var lockCommand = new NpgsqlCommand(PostgresSchema.LockStatement, connection, transaction))
                    lockCommand.ExecuteNonQuery();
                using (var command = new NpgsqlCommand(PostgresSchema.ArchiveTable(collection) + PostgresSchema.LaterArchiveChanges(collection), connection, transaction))
                    command.ExecuteNonQuery();
                transaction.Commit();
            }
            var store = new PostgresArchiveStore(_source, _writer, collection);
            _archives[collection] = store;
            return store;
        }
    }

    private IEnumerable<string> ArchiveNames()
    {
        lock (_archives)
            return _archives.Keys.ToArray();
    }

    // Removes the rows of deleted archive records now rather than at the next background pass; returns how many.
    internal Task<long> PurgeAsync() => _purger.PurgeAsync();

    public Task FlushAsync() => _writer.FlushAsync();

    public int PendingWrites => _writer.Pending;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _purger.DisposeAsync().ConfigureAwait(false);
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _source.DisposeAsync().ConfigureAwait(false);
    }
}
