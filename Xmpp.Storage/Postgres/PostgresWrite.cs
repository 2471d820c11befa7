using Npgsql;

namespace Xmpp.Storage.Postgres;

// One queued write. Archive says which archive table it touches (appends held for that table are inserted first).
internal abstract class PostgresWrite
{
    public PostgresArchiveStore? Archive { get; init; }

    // Set when a multi-row insert holding this append was refused: it then runs as a write of its own.
    public bool Alone { get; set; }

    public abstract ValueTask ExecuteAsync(NpgsqlConnection connection);

    public abstract void Complete();

    public abstract void Fail(Exception error);
}

internal class PostgresWrite<T>(Func<NpgsqlConnection, ValueTask<T>>? write, PostgresWriter owner) : PostgresWrite
{
    // Continuations must not run on the writer's loop: they would delay the next group.
    private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T _result = default!;

    public Task<T> Task => _done.Task;

    // What the task completes with once the group commits.
    public void SetResult(T result) => _result = result;

    public override async ValueTask ExecuteAsync(NpgsqlConnection connection) => _result = await write!(connection).ConfigureAwait(false);

    public override void Complete()
    {
        if (_done.TrySetResult(_result)) owner.Finished();
    }

    public override void Fail(Exception error)
    {
        if (_done.TrySetException(error)) owner.Finished();
    }
}
