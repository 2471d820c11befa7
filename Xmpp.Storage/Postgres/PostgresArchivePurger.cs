using Microsoft.Extensions.Logging;
using Npgsql;

namespace Xmpp.Storage.Postgres;

// Removes the archive rows that deletions only marked (see archive_marks in PostgresSchema), in the background and
// owner by owner: each pass takes the marks that moved since the last one (a partial index finds them), deletes the
// rows between the purged and the current mark and records how far it went, one short transaction per owner. Rows
// below a mark are invisible to every read and never written again (ids only grow), so the writer is never waited for.
internal sealed class PostgresArchivePurger : IAsyncDisposable
{
    private const int OwnersPerPass = 1000;

    private readonly NpgsqlDataSource _source;
    private readonly ILogger _logger;
    private readonly Func<IEnumerable<string>> _collections;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly Task _loop;

    public PostgresArchivePurger(NpgsqlDataSource source, ILogger logger, Func<IEnumerable<string>> collections, TimeSpan interval)
    {
        _source = source;
        _logger = logger;
        _collections = collections;
        _loop = interval > TimeSpan.Zero ? RunAsync(interval) : Task.CompletedTask;
    }

    private async Task RunAsync(TimeSpan interval)
    {
        try
        {
            while (true)
            {
                await Task.Delay(interval, _stopping.Token).ConfigureAwait(false);
                try
                {
                    await PurgeAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The next pass tries again; the writer's own log line reports an outage.
                    _logger.LogDebug(ex, "Archive purge pass failed");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // One pass over every archive; returns how many rows it removed.
    public async Task<long> PurgeAsync(CancellationToken cancellation = default)
    {
        await _oneAtATime.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            long removed = 0;
            foreach (var collection in _collections())
                removed += await PurgeCollectionAsync(collection, cancellation).ConfigureAwait(false);
            return removed;
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private async Task<long> PurgeCollectionAsync(string collection, CancellationToken cancellation)
    {
        long removed = 0;
        await using var connection = await _source.OpenConnectionAsync(cancellation).ConfigureAwait(false);
        while (true)
        {
            var marks = new List<(string Owner, long Purged, long Through)>();
            await using (var find = new NpgsqlCommand(
                $"SELECT owner, purged, through FROM archive_marks WHERE collection = $1 AND through > purged LIMIT {OwnersPerPass}", connection))
            {
                find.Parameters.Add(new NpgsqlParameter<string> { TypedValue = collection });
                await using var reader = await find.ExecuteReaderAsync(cancellation).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellation).ConfigureAwait(false))
                    marks.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
            }
            foreach (var (owner, purged, through) in marks)
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellation).ConfigureAwait(false);
                await using var delete = new NpgsqlCommand(
                    $"DELETE FROM archive_{collection} WHERE owner = $1 AND id > $2 AND id <= $3", connection);
                delete.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owner });
                delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = purged });
                delete.Parameters.Add(new NpgsqlParameter<long> { TypedValue = through });
                removed += await delete.ExecuteNonQueryAsync(cancellation).ConfigureAwait(false);
                await using var done = new NpgsqlCommand(
                    "UPDATE archive_marks SET purged = GREATEST(purged, $3) WHERE collection = $1 AND owner = $2", connection);
                done.Parameters.Add(new NpgsqlParameter<string> { TypedValue = collection });
                done.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owner });
                done.Parameters.Add(new NpgsqlParameter<long> { TypedValue = through });
                await done.ExecuteNonQueryAsync(cancellation).ConfigureAwait(false);
                await transaction.CommitAsync(cancellation).ConfigureAwait(false);
            }
            if (marks.Count < OwnersPerPass)
                return removed;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        // A pass in progress (started by a test) ends before the data source goes away.
        await _oneAtATime.WaitAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}
