using Microsoft.Extensions.Logging;
using Npgsql;

namespace Xmpp.Storage.Postgres;

// Whether PostgreSQL can be reached, as the last read or write found: the one place that says so in the log, once
// when an outage begins ("cannot be reached") and once when it ends ("reachable again"), whichever of the writer's
// retries and the stores' reads notices first. Without it a server under load would write one error per failed read.
// Reads go through ScalarAsync, ReaderAsync and OpenAsync; a read still fails during an outage (its caller answers
// with an error), only its log line is shared.
internal sealed class PostgresHealth(ILogger logger, Func<int> pendingWrites)
{
    private readonly Lock _lock = new();
    private DateTime? _since;
    private volatile bool _down;

    public bool IsDown => _down;

    public async Task<object?> ScalarAsync(NpgsqlCommand command)
    {
        try
        {
            var result = await command.ExecuteScalarAsync().ConfigureAwait(false);
            Reachable();
            return result;
        }
        catch (Exception ex) when (Unreachable(ex))
        {
            throw; // never reached: Unreachable only notes the failure
        }
    }

    public async Task<NpgsqlDataReader> ReaderAsync(NpgsqlCommand command)
    {
        try
        {
            var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
            Reachable();
            return reader;
        }
        catch (Exception ex) when (Unreachable(ex))
        {
            throw;
        }
    }

    public async Task<NpgsqlConnection> OpenAsync(NpgsqlDataSource source)
    {
        try
        {
            var connection = await source.OpenConnectionAsync().ConfigureAwait(false);
            Reachable();
            return connection;
        }
        catch (Exception ex) when (Unreachable(ex))
        {
            throw;
        }
    }

    // Notes a failure; false, so that it can stand in an exception filter and let the exception go on.
    public bool Unreachable(Exception ex)
    {
        if (!PostgresWriter.IsUnreachable(ex) || _down) return false;
        lock (_lock)
        {
            if (_since is not null) return false;
            _since = DateTime.UtcNow;
            _down = true;
        }
        logger.LogError("PostgreSQL cannot be reached ({Reason}): reads fail and {Count} writes are held and retried until it is back",
            ex.Message, pendingWrites());
        return false;
    }

    public void Reachable()
    {
        if (!_down) return;
        DateTime since;
        lock (_lock)
        {
            if (_since is not { } start) return;
            since = start;
            _since = null;
            _down = false;
        }
        logger.LogWarning("PostgreSQL is reachable again after {Seconds:F1} s", (DateTime.UtcNow - since).TotalSeconds);
    }
}
