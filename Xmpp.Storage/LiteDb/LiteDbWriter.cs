using System.Threading.Channels;
using LiteDB;

namespace Xmpp.Storage.LiteDb;

// The only thread that writes to the database. LiteDB transactions belong to the thread that began them, and one
// commit per document is slow, so every write is queued here and the writer runs as many queued writes as it can take
// (up to MaxBatch) inside one transaction: group commit. A write's task completes only after the commit holding it is
// durable (see MakeDurable), which is what an acknowledgement that promises durability waits for.
//
// A full disk (ENOSPC, EDQUOT) is an outage to wait out, as in the archive logs (LogArchiveStore.AppendDurably): the
// group stays the writer's, so nothing behind it is acknowledged, and it is tried again with back-off until it fits
// (see HoldWhileFull). LiteDB 5.0.20 closes its engine on any I/O error of its own writer thread and rethrows that
// error from then on, so each failed attempt is followed by opening the file afresh (LiteDB's recovery replays only
// confirmed transactions from the -log file, so the reopened database holds every earlier commit and none of the
// failed group). Reads go to the current instance (Database).
internal sealed class LiteDbWriter : IAsyncDisposable
{
    internal const int MaxBatch = 8192;

    // The name a full disk is reported under (StorageStall, the log line, the xmppd.storage.stalled metric).
    internal const string StoreName = "database";

    // How long a full disk may last before new foreground writes are refused rather than queued, and how many may wait
    // behind the held group meanwhile. Both, because they bound different things: the grace period lets a moment of
    // full disk (a log rotated, a temporary file removed a second later) pass with nobody refused; the bound keeps a
    // burst within that second from piling up in memory. Tests shorten the intervals.
    internal static TimeSpan StallGrace { get; set; } = TimeSpan.FromSeconds(2);

    internal const int MaxPendingWhileFull = 1_000;

    // Back-off between attempts of a held group: from the first to the last, doubling.
    internal static TimeSpan FirstRetry { get; set; } = TimeSpan.FromMilliseconds(250);

    internal static TimeSpan LastRetry { get; set; } = TimeSpan.FromSeconds(2);

    // Each group also writes a random number here; after a failed checkpoint the reopened file says whether the group's
    // commit reached the -log file (then recovery kept it, and running it again would apply it twice) or not.
    private const string MarkerCollection = "writer";

    private LiteDatabase _db;
    private readonly Func<LiteDatabase>? _reopen;
    private readonly string? _probePath;
    private readonly StorageStall? _stall;
    private readonly Channel<WriteOperation> _queue =
        Channel.CreateUnbounded<WriteOperation>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Exception? _fault;
    private volatile bool _closing;
    private long _commits;
    private int _pending;
    private long _fullSince;
    private Task? _lastForeground;

    // reopen opens the file again after LiteDB closed itself on a full disk; without it (tests of the grouping) a full
    // disk fails the group as any other engine error does.
    public LiteDbWriter(LiteDatabase db, Func<LiteDatabase>? reopen = null, StorageStall? stall = null, string? directory = null)
    {
        _db = db;
        _probePath = directory is null ? null : Path.Combine(directory, ".space-probe");
        _reopen = reopen;
        _stall = stall;
        // A background thread of its own: the batch blocks in fsync, which must not hold a pool thread, and the
        // transaction must stay on one thread from BeginTrans to Commit.
        var thread = new Thread(Run) { IsBackground = true, Name = "LiteDB group commit" };
        thread.Start();
    }

    // The open database, for reads. It is replaced after a full disk closed the previous one.
    public LiteDatabase Database => Volatile.Read(ref _db);

    // Runs a read (which must read everything it returns, not hand back a lazy query) on the open database. A read that
    // meets the instance LiteDB closed on a full disk (it rethrows the I/O error, or reports itself disposed) runs
    // again on the one the writer opens in its place, so readers see the outage only as a moment's delay.
    public T Read<T>(Func<LiteDatabase, T> read)
    {
        var deadline = Environment.TickCount64 + 10_000;
        while (true)
        {
            var db = Database;
            try
            {
                return read(db);
            }
            catch (Exception ex) when ((ex is ObjectDisposedException || StorageStall.IsOutOfSpaceAnywhere(ex)
                                        || (ex is LiteException && !ReferenceEquals(db, Database))) && _reopen is not null
                                       && Environment.TickCount64 < deadline)
            {
                while (ReferenceEquals(db, Database) && Environment.TickCount64 < deadline)
                    Thread.Sleep(5);
            }
        }
    }

    // Read for a caller that may be on a socket engine's thread (BlockingWork): a read can wait for the writer's lock,
    // for the disk, or (above) for a reopened database, none of which may stall every connection that thread serves.
    public ValueTask<T> ReadAsync<T>(Func<LiteDatabase, T> read) => BlockingWork.Run(read, Read);

    // Whether the writer holds a group until the disk has space again.
    public bool Full => Volatile.Read(ref _fullSince) != 0;

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
        if (!background && Refuses())
        {
            StorageMetrics.RefusedWrite(StoreName);
            operation.Fail(new StorageFullException(StoreName));
            return operation.Task;
        }
        if (!background)
            Volatile.Write(ref _lastForeground, operation.Task);
        if (!_queue.Writer.TryWrite(operation))
            operation.Fail(_fault ?? new ObjectDisposedException(nameof(LiteDbStorage)));
        return operation.Task;
    }

    // While the disk is full, a new foreground write is refused (StorageFullException: the server answers
    // resource-constraint, type wait) once the outage has lasted StallGrace, or at once when MaxPendingWhileFull writes
    // already wait. Background writes (an archive log's index pass) are never refused: their log holds them itself.
    private bool Refuses()
    {
        var since = Volatile.Read(ref _fullSince);
        return since != 0 && (Environment.TickCount64 - since >= StallGrace.TotalMilliseconds || Pending > MaxPendingWhileFull);
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
        // The writer drains what is already queued, then stops; a group held by a full disk is failed rather than
        // retried, so that a stop does not wait for space.
        _closing = true;
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
        var retry = FirstRetry;
        while (pending.Count > 0)
        {
            var failed = -1;
            var committing = false;
            long marker = 0;
            Exception? error = null;
            var db = _db;
            try
            {
                if (!db.BeginTrans())
                    throw new InvalidOperationException("The LiteDB writer thread is already inside a transaction.");
                for (var i = 0; i < pending.Count; i++)
                {
                    try
                    {
                        pending[i].Execute(db);
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
                    BeforeCommit?.Invoke(db);
                    marker = Random.Shared.NextInt64(1, long.MaxValue);
                    db.GetCollection(MarkerCollection).Upsert(new BsonDocument { ["_id"] = 1, ["group"] = marker });
                    committing = true;
                    db.Commit();
                    MakeDurable(db);
                    Interlocked.Increment(ref _commits);
                    StorageMetrics.Committed("litedb", started, pending.Count);
                }
                else
                {
                    db.Rollback();
                    RolledBack?.Invoke();
                }
            }
            catch (Exception ex)
            {
                var rollback = ReferenceEquals(db, _abandoned) ? null : TryRollback(db);
                RolledBack?.Invoke();
                if (_reopen is not null && !_closing && (StorageStall.IsOutOfSpaceAnywhere(ex) || StorageStall.IsOutOfSpaceAnywhere(rollback)))
                {
                    if (HoldWhileFull(ex, committing ? marker : 0, ref retry))
                    {
                        Complete(pending);
                        return;
                    }
                    continue;
                }
                // LiteDB itself failed (I/O error, closed database, or a full disk while closing): nothing in this group
                // is known to be durable, so every write of it fails with the cause instead of hanging.
                foreach (var operation in pending)
                    operation.Fail(_closing && StorageStall.IsOutOfSpaceAnywhere(ex) ? new StorageFullException(StoreName) : ex);
                // LiteDB closes its engine on any I/O error and on a broken invariant (error 999), and refuses every
                // later call; the file opened afresh (its recovery keeps every confirmed commit) takes the next writes.
                if (_reopen is not null && !_closing && EngineFailure(_db) is not null)
                    TryReopen();
                return;
            }

            if (failed < 0)
            {
                Complete(pending);
                return;
            }
            // A write's own error may be the full disk too (LiteDB writes a large transaction's pages to the -log file
            // before the commit); then the group is held like any other.
            if (_reopen is not null && !_closing && StorageStall.IsOutOfSpaceAnywhere(error))
            {
                TryRollback(db);
                if (HoldWhileFull(error!, 0, ref retry))
                {
                    Complete(pending);
                    return;
                }
                continue;
            }
            pending[failed].Fail(error!);
            pending.RemoveAt(failed);
        }
    }

    private void Complete(List<WriteOperation> pending)
    {
        if (Interlocked.Exchange(ref _fullSince, 0) != 0)
            _stall?.End(StoreName);
        foreach (var operation in pending)
            operation.Complete();
    }

    // After a group failed on a full disk: reports the outage (once), opens the file afresh (until that works: LiteDB's
    // recovery may itself need space to move confirmed pages from the -log file into the data file), waits, and tells
    // the caller whether the group is in the reopened file after all (its commit reached the -log file and only the
    // checkpoint failed). If not, the caller runs the group again; its writes are pure functions of the database state.
    private bool HoldWhileFull(Exception error, long marker, ref TimeSpan retry)
    {
        if (Interlocked.CompareExchange(ref _fullSince, Math.Max(1, Environment.TickCount64), 0) == 0)
            _stall?.Begin(StoreName, error);
        while (true)
        {
            try
            {
                Reopen();
                break;
            }
            catch (Exception ex) when (StorageStall.IsOutOfSpaceAnywhere(ex) && !_closing)
            {
                Wait(ref retry);
            }
        }
        if (marker != 0 && _db.GetCollection(MarkerCollection).FindById(1)?["group"] is { IsInt64: true } stored && stored.AsInt64 == marker)
        {
            Interlocked.Increment(ref _commits);
            return true;
        }
        Wait(ref retry);
        return false;
    }

    private void TryReopen()
    {
        try
        {
            Reopen();
        }
        catch (Exception)
        {
            // Left closed: the next group fails with LiteDB's own error and tries again.
        }
    }

    // Opens the file afresh in place of the instance LiteDB closed. That instance is disposed on a thread of its own:
    // it may wait in Dispose for its dead disk writer as its checkpoint does (seen: the group commit thread hung
    // there), and must not hold this one; one given up in a checkpoint (_abandoned) is not disposed at all.
    private void Reopen()
    {
        var closed = _db;
        if (!ReferenceEquals(closed, _abandoned) && !ReferenceEquals(closed, _disposing))
        {
            _disposing = closed;
            _ = Task.Factory.StartNew(() => TryDispose(closed), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        Volatile.Write(ref _db, _reopen!());
    }

    private static void Wait(ref TimeSpan retry)
    {
        Thread.Sleep(retry);
        retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, LastRetry.Ticks));
    }

    private static void TryDispose(LiteDatabase db)
    {
        try
        {
            db.Dispose();
        }
        catch (Exception)
        {
            // A database that closed itself on an I/O error may fail again on the way out; the reopen decides.
        }
    }

    // What LiteDB 5.0.20 guarantees: Commit() (TransactionService.Commit -> DiskService.WriteAsync) only marks the
    // transaction confirmed in memory and hands its pages to DiskWriterQueue, whose background task writes them to the
    // -log file and fsyncs it (FlushToDisk) later. Commit() returns before that, so a process killed right after it
    // can lose an acknowledged write. Checkpoint() waits for that queue to be empty (DiskWriterQueue.Wait), copies the
    // confirmed log pages into the data file, fsyncs the data file (FileStream.Flush(true)) and truncates the log.
    // After it, the group is on disk even across a power loss; running it once per group costs one checkpoint per
    // group, not per write (measured here at about a fifth of the cost of the commit itself).
    private void MakeDurable(LiteDatabase db)
    {
        if (_reopen is null)
        {
            db.Checkpoint();
            return;
        }
        // LiteDB's checkpoint waits for its disk writer's queue to empty. When that writer dies on a full disk with
        // pages still queued, the wait can last forever (seen in the full-disk tests: the group commit thread hung in
        // Checkpoint). So the checkpoint runs on a thread of its own; if it takes longer than CheckpointPatience and the
        // disk is full, it is given up (its thread stays blocked, on an instance nobody uses again) and the group is
        // held like any other that met a full disk. A slow disk with space left is waited for.
        var checkpoint = Task.Factory.StartNew(db.Checkpoint, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var patience = Environment.TickCount64 + (long)CheckpointPatience.TotalMilliseconds;
        while (!checkpoint.Wait(EngineCheck))
        {
            // LiteDB 5.0.20's log writer (DiskWriterQueue.ExecuteQueue) stops on a write error without ever setting the
            // "queue is empty" event that the checkpoint waits for, so the checkpoint waits forever, holding the engine's
            // exclusive lock (readers queue behind it). It closes the engine first (EngineState.Handle), which is seen
            // at once: the disk probe alone missed it when reopening had freed a little space (the full-disk tests hung
            // here about one run in nine).
            if (EngineFailure(db) is { } failure)
            {
                _abandoned = db;
                throw failure;
            }
            if (Environment.TickCount64 < patience) continue;
            patience = Environment.TickCount64 + (long)CheckpointPatience.TotalMilliseconds;
            if (!DiskIsFull()) continue;
            _abandoned = db;
            throw new IOException("The database checkpoint did not finish: the disk is full", Enospc);
        }
    }

    // How often a checkpoint in progress is checked for an engine LiteDB closed under it.
    private static readonly TimeSpan EngineCheck = TimeSpan.FromMilliseconds(50);

    // The error LiteDB closed its engine with, or null while it is open. Rollback on a thread without a transaction
    // (this one, between two groups) validates the engine's state and takes no lock, so it cannot wait behind the
    // stuck checkpoint; it throws the closing error (or ObjectDisposedException-like engine-disposed error).
    private static Exception? EngineFailure(LiteDatabase db)
    {
        try
        {
            db.Rollback();
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    internal static TimeSpan CheckpointPatience { get; set; } = TimeSpan.FromSeconds(2);

    private const int Enospc = 28;

    // An instance whose checkpoint was given up: it is neither used nor disposed again (Dispose would wait as well).
    private LiteDatabase? _abandoned;

    // The instance last handed to a disposing thread, so a failed reopen does not dispose it twice.
    private LiteDatabase? _disposing;

    // Whether 64 KiB can be written and synced beside the database file.
    private bool DiskIsFull()
    {
        var probe = _probePath;
        if (probe is null) return false;
        try
        {
            using (var file = new FileStream(probe, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
                file.Write(new byte[64 * 1024]);
                file.Flush(flushToDisk: true);
            }
            return false;
        }
        catch (IOException ex) when (StorageStall.IsOutOfSpace(ex))
        {
            return true;
        }
        catch (Exception)
        {
            return false;
        }
    }

    // Returns what the rollback threw: on a full disk LiteDB has closed itself and rethrows the I/O error that made it.
    private static Exception? TryRollback(LiteDatabase db)
    {
        try
        {
            db.Rollback();
            return null;
        }
        catch (Exception ex)
        {
            // The original failure is what the callers need to see.
            return ex;
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
