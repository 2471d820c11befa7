using System.Threading.Channels;
using LiteDB;

namespace Xmpp.Storage.LiteDb;

// The only thread that writes to the database. LiteDB transactions belong to the thread that began them, and one
// commit per document is slow, so every write is queued here and the writer runs as many queued writes as it can take
// (up to MaxBatch) inside one transaction: group commit. A write's task completes only after the commit holding it is
// durable (see MakeDurable), which is what an acknowledgement that promises durability waits for.
internal sealed class LiteDbWriter : IAsyncDisposable
{
    internal const int MaxBatch = 8192;

    private readonly LiteDatabase _db;
    private readonly Channel<WriteOperation> _queue =
        Channel.CreateUnbounded<WriteOperation>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Exception? _fault;
    private long _commits;
    private int _pending;
    private Task? _lastForeground;

    public LiteDbWriter(LiteDatabase db)
    {
        _db = db;
        // A background thread of its own: the batch blocks in fsync, which must not hold a pool thread, and the
        // transaction must stay on one thread from BeginTrans to Commit.
        var thread = new Thread(Run) { IsBackground = true, Name = "LiteDB group commit" };
        thread.Start();
    }

    // Raised on the writer thread after a group was rolled back, so stores that keep writer-side caches of what they
    // wrote drop them (the rolled-back writes never happened).
    public event Action? RolledBack;

    // Raised on the writer thread inside the group's transaction, after its writes and before the commit: a store
    // writes once per group what would otherwise be rewritten by every write of the group (a sequence's last value).
    public event Action<LiteDatabase>? BeforeCommit;

    // Writes queued and not yet completed or failed.
    public int Pending => Volatile.Read(ref _pending);

    // How many transactions have been committed: lets tests and benchmarks see the grouping.
    public long Commits => Interlocked.Read(ref _commits);

    // Runs write on the writer thread inside the current group transaction. It must be a pure function of the database
    // state (it may run again when another write of its group fails) and must not swallow LiteDB exceptions.
    // A background write (an archive log's index pass) is one nobody's acknowledgement waits for: FlushAsync does not
    // wait for it, so an SM ack or an IQ answer is not held behind a large index pass.
    public Task<T> Enqueue<T>(Func<LiteDatabase, T> write, bool background = false)
    {
        var operation = new WriteOperation<T>(write, this) { Background = background };
        Interlocked.Increment(ref _pending);
        if (!background)
            Volatile.Write(ref _lastForeground, operation.Task);
        if (!_queue.Writer.TryWrite(operation))
            operation.Fail(_fault ?? new ObjectDisposedException(nameof(LiteDbStorage)));
        return operation.Task;
    }

    // Runs action on the writer thread between two groups, outside any transaction, so no write is under way while it
    // runs (xmppd backup checkpoints and copies the file). Later writes wait for it; FlushAsync does not.
    public Task RunExclusiveAsync(Action<LiteDatabase> action)
    {
        var operation = new WriteOperation<bool>(db =>
        {
            action(db);
            return true;
        }, this) { Background = true, Exclusive = true };
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite(operation))
            operation.Fail(_fault ?? new ObjectDisposedException(nameof(LiteDbStorage)));
        return operation.Task;
    }

    // Writes complete in queue order, so once the last foreground write queued before the call has completed (stored
    // or failed), every earlier one has too.
    public Task FlushAsync() => Volatile.Read(ref _lastForeground) is { IsCompleted: false } last ? Quietly(last) : Task.CompletedTask;

    private static async Task Quietly(Task write)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The write's own caller sees its failure; a flush only waits for it.
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The writer drains what is already queued, then stops.
        _queue.Writer.TryComplete();
        await _stopped.Task.ConfigureAwait(false);
    }

    private void Run()
    {
        var batch = new List<WriteOperation>(MaxBatch);
        var reader = _queue.Reader;
        try
        {
            var previous = 0;
            while (WaitToRead(reader))
            {
                // The callers released by a large group run on pool threads and queue their next writes a moment
                // later; without this yield the first of them would be committed alone and the rest wait for it.
                // Measured: 5,000 appends from 50 tasks took about 170 commits without it, about 105 with it.
                if (previous > 1)
                    Thread.Yield();
                if (reader.TryPeek(out var head) && head.Exclusive && reader.TryRead(out _))
                {
                    RunAlone(head);
                    previous = 0;
                    continue;
                }
                // A background write commits in a group of its own, so foreground writes never wait for it.
                while (batch.Count < MaxBatch && reader.TryPeek(out var next) && !next.Exclusive
                       && (batch.Count == 0 || next.Background == batch[0].Background) && reader.TryRead(out var operation))
                    batch.Add(operation);
                previous = batch.Count;
                CommitBatch(batch);
                batch.Clear();
            }
        }
        catch (Exception ex)
        {
            // The loop itself broke: refuse new writes and fail everything waiting, so that no caller hangs.
            _fault = ex;
            _queue.Writer.TryComplete(ex);
            foreach (var operation in batch)
                operation.Fail(ex);
            while (reader.TryRead(out var operation))
                operation.Fail(ex);
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private static bool WaitToRead(ChannelReader<WriteOperation> reader)
    {
        var wait = reader.WaitToReadAsync();
        return wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    private void RunAlone(WriteOperation operation)
    {
        try
        {
            operation.Execute(_db);
        }
        catch (Exception ex)
        {
            operation.Fail(ex);
            return;
        }
        operation.Complete();
    }

    private void CommitBatch(List<WriteOperation> pending)
    {
        // A write that throws takes the whole transaction down with it (LiteDB rolls back on any engine error), so it is
        // failed alone and the rest of the group runs again in a fresh transaction.
        while (pending.Count > 0)
        {
            var failed = -1;
            Exception? error = null;
            try
            {
                if (!_db.BeginTrans())
                    throw new InvalidOperationException("The LiteDB writer thread is already inside a transaction.");
                for (var i = 0; i < pending.Count; i++)
                {
                    try
                    {
                        pending[i].Execute(_db);
                    }
                    catch (Exception ex)
                    {
                        failed = i;
                        error = ex;
                        break;
                    }
                }
                if (failed < 0)
                {
                    var started = StorageMetrics.Start();
                    BeforeCommit?.Invoke(_db);
                    _db.Commit();
                    Interlocked.Increment(ref _commits);
                    MakeDurable();
                    StorageMetrics.Committed("litedb", started, pending.Count);
                }
                else
                {
                    _db.Rollback();
                    RolledBack?.Invoke();
                }
            }
            catch (Exception ex)
            {
                // LiteDB itself failed (I/O error, disk full, closed database): nothing in this group is known to be
                // durable, so every write of it fails with the cause instead of hanging.
                TryRollback();
                RolledBack?.Invoke();
                foreach (var operation in pending)
                    operation.Fail(ex);
                return;
            }

            if (failed < 0)
            {
                foreach (var operation in pending)
                    operation.Complete();
                return;
            }
            pending[failed].Fail(error!);
            pending.RemoveAt(failed);
        }
    }

    // What LiteDB 5.0.20 guarantees: Commit() (TransactionService.Commit -> DiskService.WriteAsync) only marks the
    // transaction confirmed in memory and hands its pages to DiskWriterQueue, whose background task writes them to the
    // -log file and fsyncs it (FlushToDisk) later. Commit() returns before that, so a process killed right after it
    // can lose an acknowledged write. Checkpoint() waits for that queue to be empty (DiskWriterQueue.Wait), copies the
    // confirmed log pages into the data file, fsyncs the data file (FileStream.Flush(true)) and truncates the log.
    // After it, the group is on disk even across a power loss; running it once per group costs one checkpoint per
    // group, not per write (measured here at about a fifth of the cost of the commit itself).
    private void MakeDurable() => _db.Checkpoint();

    private void TryRollback()
    {
        try
        {
            _db.Rollback();
        }
        catch (Exception)
        {
            // The original failure is what the callers need to see.
        }
    }

    private abstract class WriteOperation
    {
        public bool Background { get; init; }

        // Runs alone, outside a transaction (RunExclusiveAsync).
        public bool Exclusive { get; init; }

        public abstract void Execute(LiteDatabase db);

        public abstract void Complete();

        public abstract void Fail(Exception error);
    }

    private sealed class WriteOperation<T>(Func<LiteDatabase, T> write, LiteDbWriter owner) : WriteOperation
    {
        // Continuations must not run on the writer thread: they would delay the next group and could try to open a
        // transaction on a thread that owns one.
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;

        public Task<T> Task => _done.Task;

        public override void Execute(LiteDatabase db) => _result = write(db);

        public override void Complete()
        {
            if (_done.TrySetResult(_result)) Interlocked.Decrement(ref owner._pending);
        }

        public override void Fail(Exception error)
        {
            if (_done.TrySetException(error)) Interlocked.Decrement(ref owner._pending);
        }
    }
}
