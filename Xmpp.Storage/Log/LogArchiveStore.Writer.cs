using System.Buffers;

namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    private const int MaxBatch = 16_384;

    // Past this many entries waiting for the indexer the writer waits for it, so memory stays bounded and the queue
    // (hence IStorage.PendingWrites, hence the senders' back-pressure) grows instead.
    private const int MaxTail = 200_000;

    private readonly Thread _writerThread;
    private readonly TaskCompletionSource _writerStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 20);
    private readonly List<LogWrite> _group = new(MaxBatch);
    private readonly SemaphoreSlim _indexed = new(0);

    // Writer thread only: the last id given out, and per owner the newest stamp (time never runs backwards within an
    // owner's archive, see IArchiveStore).
    private long _lastId;
    private readonly Dictionary<string, long> _newest = new(StringComparer.Ordinal);

    private void Run()
    {
        var batch = new List<LogWrite>(MaxBatch);
        var reader = _queue.Reader;
        try
        {
            while (WaitToRead(reader))
            {
                while (Volatile.Read(ref _tailCount) > MaxTail)
                {
                    WakeIndexer();
                    _indexed.Wait(100);
                }
                PaceGroups();
                while (batch.Count < MaxBatch && reader.TryRead(out var write))
                    batch.Add(write);
                _flushes.Taken(batch.Count);
                _lastGroupStart = Environment.TickCount64;
                Process(batch);
                batch.Clear();
            }
        }
        catch (Exception ex)
        {
            // A write to the log failed: what follows the failure point on disk is unknown, so the log takes no more
            // writes (a later record after a torn one would be cut off on the next open). Nobody is left waiting.
            _fault = ex;
            _queue.Writer.TryComplete(ex);
            foreach (var write in _group)
                Fail(write, ex);
            foreach (var write in batch)
                Fail(write, ex);
            while (reader.TryRead(out var write))
                Fail(write, ex);
        }
        finally
        {
            // After the queue was closed every write that entered it is done (one refused at the closed queue was
            // counted but failed on the spot); after a failure no flush can complete.
            _flushes.End(_fault);
            _writerStopped.TrySetResult();
        }
    }

    // Under steady load a group starts at most every MinGroupInterval: an fsync costs the same for one record or a
    // thousand (here about 1 ms of wall time and a sixth of the server's CPU when every group synced at once, measured
    // with perf at 10,000 archived messages a second), and nothing but a durability wait (a XEP-0198 ack, an IQ answer
    // after a queued write) is held by the pause. After a quiet spell the first write is taken at once.
    private const int MinGroupInterval = 10;

    private long _lastGroupStart;

    private void PaceGroups()
    {
        var wait = _lastGroupStart + MinGroupInterval - Environment.TickCount64;
        if (wait > 0 && wait <= MinGroupInterval)
            Thread.Sleep((int)wait);
    }

    private static bool WaitToRead(System.Threading.Channels.ChannelReader<LogWrite> reader)
    {
        var wait = reader.WaitToReadAsync();
        return wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    // Appends need nothing but the writer's own state, so any number of them share one write and one fsync. A replace
    // or deletion looks at the index first (does the record exist, what does it delete), so what was queued before it
    // is committed first.
    private void Process(List<LogWrite> batch)
    {
        foreach (var write in batch)
        {
            if (write.Kind is LogRecordKind.Replace or LogRecordKind.DeleteThrough && _group.Count > 0)
                CommitGroup();
            Prepare(write);
            if (write.Writes)
            {
                var record = write.ToRecord();
                var length = record.EncodedLength;
                if (!_segments.Fits(_buffer.WrittenCount, length))
                {
                    CommitGroup();
                    _segments.Roll();
                }
                write.Location = new LogLocation(_segments.ActiveSegment, _segments.ActiveLength + _buffer.WrittenCount, length);
                record.WriteTo(_buffer);
            }
            _group.Add(write);
        }
        CommitGroup();
    }

    private void Prepare(LogWrite write)
    {
        switch (write.Kind)
        {
            case LogRecordKind.Append:
                // Imported records keep their ids (see Migrate).
                write.Id = write.Id > 0 ? write.Id : _lastId + 1;
                _lastId = Math.Max(_lastId, write.Id);
                if (!_newest.TryGetValue(write.Owner, out var newest))
                    newest = NewestStamp(write.Owner);
                write.Stamp = _newest[write.Owner] = Math.Max(write.Stamp, newest);
                write.Result = write.Id;
                write.Writes = true;
                break;
            case LogRecordKind.Replace:
                var current = Find(write.Owner, write.Id);
                write.Writes = current is not null;
                write.Result = write.Writes ? 1 : 0;
                write.Previous = current?.Location ?? default;
                break;
            case LogRecordKind.DeleteThrough:
                if (write.Id == LogWrite.Everything)
                    write.Id = _lastId;
                write.DeletedSegments = DeletedSegments(write.Owner, write.Id);
                write.Result = write.DeletedSegments.Count;
                write.Writes = write.Result > 0;
                break;
        }
    }

    // Writes the group's records, fsyncs, and only then shows them to queries and completes their tasks.
    private void CommitGroup()
    {
        if (_buffer.WrittenCount > 0)
        {
            var started = StorageMetrics.Start();
            AppendDurably(_buffer.WrittenSpan);
            _buffer.ResetWrittenCount();
            StorageMetrics.Committed("archive-log", started, _group.Count);
        }
        lock (_gate)
        {
            foreach (var write in _group)
                if (write.Writes)
                    Apply(write);
            _applied = (_segments.ActiveSegment, _segments.ActiveLength);
        }
        if (Volatile.Read(ref _tailCount) >= IndexBatch)
            WakeIndexer();
        var queued = 0;
        foreach (var write in _group)
        {
            Complete(write);
            if (write.Queued) queued++;
        }
        _group.Clear();
        _flushes.Done(queued);
    }

    // A full disk is an outage to wait out, not a fault: the group stays the writer's (its tasks, hence every flush and
    // every XEP-0198 ack behind it, wait), the segment is cut back to where it ended, and the same bytes are written
    // again every RetryInterval until they fit. Nothing was acknowledged, nothing is lost, and nothing is written twice.
    // Any other I/O error, or a full disk while the store is closing, still stops the log (Run).
    private void AppendDurably(ReadOnlySpan<byte> records)
    {
        var length = _segments.ActiveLength;
        while (true)
        {
            try
            {
                _segments.Append(records);
                _segments.Sync();
                _stall?.End(_name);
                return;
            }
            catch (IOException ex) when (StorageStall.IsOutOfSpace(ex) && _stall is not null && !_closing)
            {
                _segments.CutBack(length);
                _stall.Begin(_name, ex);
                Thread.Sleep(RetryInterval);
            }
        }
    }

    internal static TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    // Under _gate: the write's effect on the in-memory index. Also used when replaying the log on open.
    private void Apply(LogWrite write)
    {
        var owner = Owner(write.Owner);
        switch (write.Kind)
        {
            case LogRecordKind.Append:
                // One string per peer in a run of records, not one per record: the tail lives until the next index
                // pass, long enough for the garbage collector to promote whatever it holds.
                var with = write.With == owner.LastWith ? owner.LastWith : owner.LastWith = write.With;
                owner.Tail.Add(write.ToEntry(with));
                _tailCount++;
                _appliedLastId = Math.Max(_appliedLastId, write.Id);
                AddLive(write.Location.Segment, 1);
                break;
            case LogRecordKind.Replace:
                owner.Replaced[write.Id] = write.Location;
                AddLive(write.Previous.Segment, -1);
                AddLive(write.Location.Segment, 1);
                break;
            case LogRecordKind.DeleteThrough:
                owner.DeletedThrough = Math.Max(owner.DeletedThrough, write.Id);
                _tailCount -= RemoveThrough(owner.Tail, write.Id);
                ForgetReplacedThrough(owner, write.Id);
                foreach (var segment in write.DeletedSegments!)
                    AddLive(segment, -1);
                break;
        }
        _unindexed.Add(owner);
    }

    // Its own method: a lambda in Apply capturing its parameter made the compiler allocate the closure on every call,
    // one per archived record.
    private static void ForgetReplacedThrough(LogOwner owner, long through)
    {
        foreach (var id in owner.Replaced.Keys.Where(id => id <= through).ToList())
            owner.Replaced.Remove(id);
    }

    private LogOwner Owner(string name)
    {
        if (!_owners.TryGetValue(name, out var owner))
            _owners[name] = owner = new LogOwner(name);
        return owner;
    }

    private void AddLive(int segment, long delta) => _live[segment] = _live.GetValueOrDefault(segment) + delta;

    // Removes the entries with ids up to through from an id-ordered list; returns how many.
    private static int RemoveThrough(List<LogEntry> entries, long through)
    {
        var count = 0;
        while (count < entries.Count && entries[count].Id <= through)
            count++;
        entries.RemoveRange(0, count);
        return count;
    }
}
