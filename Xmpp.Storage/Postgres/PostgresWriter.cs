using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Xmpp.Storage.Postgres;

// The only writer to the database, as LiteDbWriter is for the embedded store: every write is queued here, and one
// loop runs as many queued writes as it can take (up to MaxBatch) inside one transaction on its own connection, so a
// commit (one WAL flush with synchronous_commit on) is paid per group, not per write. Consecutive archive appends of a
// group become one multi-row INSERT per collection (PostgresArchiveStore.InsertAsync): the archive and the spool cost
// a few round trips per group, not one per message. A write's task completes only after the commit holding it.
//
// Faults: when the database cannot be reached (connection refused or lost, server shutting down) the group is kept
// and retried on a fresh connection with back-off, said once in the log per outage; callers keep waiting (an SM ack,
// an upload's 201 wait for the commit), and PendingWrites grows so senders are slowed. Every write is written to be
// run again: an append keeps the id it was given and inserts with ON CONFLICT DO NOTHING, so a commit whose answer
// was lost does not store a record twice. A write the database refuses (an SQL error) fails alone: the rest of its
// group runs again without it.
internal sealed class PostgresWriter : IAsyncDisposable
{
    internal const int MaxBatch = 4096;
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly NpgsqlDataSource _source;
    private readonly ILogger _logger;
    private readonly Channel<PostgresWrite> _queue =
        Channel.CreateUnbounded<PostgresWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;
    private NpgsqlConnection? _connection;
    private int _pending;
    private long _commits;

    public PostgresWriter(NpgsqlDataSource source, ILogger logger)
    {
        _source = source;
        _logger = logger;
        Health = new PostgresHealth(logger, () => Pending);
        _loop = Task.Run(RunAsync);
    }

    public int Pending => Volatile.Read(ref _pending);

    // Shared with the stores' reads, so an outage is said once whoever meets it.
    public PostgresHealth Health { get; }

    public long Commits => Interlocked.Read(ref _commits);

    // Runs write on the writer's connection inside the current group transaction. It must be safe to run again (after
    // a rolled-back group) and must let database exceptions through.
    public Task<T> Enqueue<T>(Func<NpgsqlConnection, ValueTask<T>> write) => Enqueue(new PostgresWrite<T>(write, this));

    public Task<T> Enqueue<T>(PostgresWrite<T> write)
    {
        Interlocked.Increment(ref _pending);
        // Counted before it enters the queue: every write ahead of it in the queue was counted before it (FlushAsync).
        _flushes.Queued();
        // Refused only once the writer is stopping: a flush counting this write then waits until the loop has drained
        // the writes queued before it and ended (FlushWaiters.End), never less.
        if (!_queue.Writer.TryWrite(write))
            write.Fail(new ObjectDisposedException(nameof(PostgresStorage)));
        return write.Task;
    }

    internal void Finished() => Interlocked.Decrement(ref _pending);

    // Flushes. Groups finish (commit, with any refused write failed) in queue order, so a flush completes once as many
    // writes have finished as had been counted when it was asked. A flush asked while the writer has not yet taken all
    // that the previous one waits for joins it: every XEP-0198 ack a session asks for during one group gets the same
    // task, which StreamManagementSession answers with one continuation, instead of a task, a wrapper and a thread-pool
    // hop of its own per <r/> (bench/results/2026-12-07-postgresql-archiving-s25.md). A flush only waits: a failed
    // write's own caller sees its failure.
    private readonly FlushWaiters _flushes = new();

    public Task FlushAsync() => Pending == 0 ? Task.CompletedTask : _flushes.WaitAsync();

    private async Task RunAsync()
    {
        var batch = new List<PostgresWrite>(MaxBatch);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (batch.Count < MaxBatch && reader.TryRead(out var write))
                    batch.Add(write);
                // CommitWithRetryAsync removes refused writes from the list.
                var taken = batch.Count;
                _flushes.Taken(taken);
                await CommitWithRetryAsync(batch).ConfigureAwait(false);
                _flushes.Done(taken);
                batch.Clear();
            }
        }
        catch (Exception ex)
        {
            // Stopped while the database was away (or the loop itself broke): nobody may be left waiting, and no later
            // write may wait for a loop that has ended.
            _queue.Writer.TryComplete(ex);
            foreach (var write in batch)
                write.Fail(ex);
            while (reader.TryRead(out var write))
                write.Fail(ex);
        }
        finally
        {
            // Every write was committed or failed: no flush may wait for the ended loop.
            _flushes.End(null);
            if (_connection is not null)
                await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task CommitWithRetryAsync(List<PostgresWrite> group)
    {
        // Refused writes fail only once the rest of their group is committed: a flush waiting for the last write
        // queued must not return while writes queued before it are still to be stored.
        var refused = new List<(PostgresWrite Write, Exception Error)>();
        try
        {
            await CommitUntilStoredAsync(group, refused).ConfigureAwait(false);
        }
        finally
        {
            foreach (var (write, error) in refused)
                write.Fail(error);
        }
    }

    private async Task CommitUntilStoredAsync(List<PostgresWrite> group, List<(PostgresWrite Write, Exception Error)> refused)
    {
        var backoff = FirstBackoff;
        var retried = false;
        while (group.Count > 0)
        {
            try
            {
                await CommitGroupAsync(group).ConfigureAwait(false);
                Health.Reachable();
                if (retried)
                    _logger.LogInformation("PostgreSQL: the {Count} writes held through the outage are committed", group.Count);
                return;
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
                // Another process's transaction (another cluster node's group, an admin command) took the same rows in
                // the other order, and PostgreSQL rolled this one back to break the deadlock: nothing of the group is
                // stored and the connection is fine. That is no outage (it was reported as one, turning /ready to 503
                // on every node under a login storm), so the group runs again at once, after a random pause of up to
                // 50 ms so that the two groups do not meet again in step.
                Interlocked.Increment(ref _conflicts);
                if (Interlocked.Exchange(ref _conflictLogged, 1) == 0)
                    _logger.LogWarning("PostgreSQL: a write group met a concurrent transaction ({State}) and runs again; said once", ex.SqlState);
                await Task.Delay(Random.Shared.Next(1, 50), _stopping.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsUnreachable(ex))
            {
                await DropConnectionAsync().ConfigureAwait(false);
                // Said once per outage, by whichever of the writer and the reads notices first.
                Health.Unreachable(ex);
                retried = true;
                // Only a stop ends the wait (OperationCanceledException, which then fails the group).
                await Task.Delay(backoff, _stopping.Token).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
            }
            catch (RefusedWriteException refusal)
            {
                // The database refused one write (or a run of appends): it fails alone, the others run again.
                await DropConnectionAsync().ConfigureAwait(false);
                if (refusal.Write is { } single)
                {
                    refused.Add((single, refusal.InnerException!));
                    group.Remove(single);
                }
                else
                {
                    // A multi-row insert was refused: its appends run again one by one to find the culprit.
                    foreach (var write in refusal.Appends!)
                        write.Alone = true;
                }
            }
        }
    }

    // Connection-level trouble, as opposed to the database refusing a statement.
    internal static bool IsUnreachable(Exception ex) => ex switch
    {
        PostgresException pg => pg.IsTransient || pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                                || pg.SqlState.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException => true,
        System.Net.Sockets.SocketException or IOException or TimeoutException => true,
        _ => false,
    };

    private async Task CommitGroupAsync(List<PostgresWrite> group)
    {
        var connection = _connection ??= await OpenAsync().ConfigureAwait(false);
        var started = StorageMetrics.Start();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        // Appends are held per archive until a write that touches the same archive comes, or the group ends; other
        // writes (accounts, rosters, documents) never read an archive table, so running them first changes nothing.
        Dictionary<PostgresArchiveStore, List<ArchiveAppend>>? appends = null;
        foreach (var write in group)
        {
            if (write is ArchiveAppend append && !append.Alone)
            {
                appends ??= [];
                if (!appends.TryGetValue(append.Store, out var run))
                    appends[append.Store] = run = [];
                run.Add(append);
                continue;
            }
            if (write.Archive is { } store && appends is not null && appends.Remove(store, out var held))
                await InsertAsync(connection, store, held).ConfigureAwait(false);
            try
            {
                await write.ExecuteAsync(connection).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (!IsUnreachable(ex))
            {
                throw new RefusedWriteException(ex, write, null);
            }
        }
        if (appends is not null)
            foreach (var (store, held) in appends)
                await InsertAsync(connection, store, held).ConfigureAwait(false);
        await transaction.CommitAsync().ConfigureAwait(false);
        // The same instrument as the embedded engines' (xmppd_storage_commit_duration_seconds, engine="postgresql").
        StorageMetrics.Committed("postgresql", started, group.Count);
        Interlocked.Increment(ref _commits);
        foreach (var write in group)
            write.Complete();
    }

    // The writer's statements have one good plan whatever the values (the insert's lookups go by index per owner and
    // pair, whatever the group's size), so its connection plans each prepared statement once (generic plan) instead
    // of again at every execution, as PostgreSQL's default does for the first five and whenever a value-specific plan
    // looks cheaper (bench/results/2026-12-07-postgresql-archiving-profile.md).
    private async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = await _source.OpenConnectionAsync(_stopping.Token).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand("SET plan_cache_mode = force_generic_plan", connection);
            await command.ExecuteNonQueryAsync(_stopping.Token).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task InsertAsync(NpgsqlConnection connection, PostgresArchiveStore store, List<ArchiveAppend> run)
    {
        try
        {
            await store.InsertAsync(connection, run).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (!IsUnreachable(ex))
        {
            throw new RefusedWriteException(ex, run.Count == 1 ? run[0] : null, run.Count == 1 ? null : run);
        }
    }

    private async Task DropConnectionAsync()
    {
        if (_connection is null) return;
        try
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A broken connection may fail to close; it is dropped either way.
        }
        _connection = null;
    }

    // Drains what is queued; a writer still waiting for an unreachable database gives up after the grace period and
    // fails what it holds, so a stop never hangs.
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false) != _loop)
            await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }

    // Write groups run again because PostgreSQL broke a deadlock or a serialization conflict with them.
    internal long Conflicts => Interlocked.Read(ref _conflicts);

    private long _conflicts;
    private int _conflictLogged;

    private sealed class RefusedWriteException(PostgresException cause, PostgresWrite? write, List<ArchiveAppend>? appends)
        : Exception(cause.Message, cause)
    {
        public PostgresWrite? Write { get; } = write;

        public List<ArchiveAppend>? Appends { get; } = appends;
    }
}
