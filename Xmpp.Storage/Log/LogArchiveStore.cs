using System.Threading.Channels;
using LiteDB;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Storage.Log;

// An archive collection kept in an append-only log beside the LiteDB file: a deliberate deviation from "LiteDB in one
// file" (ARCHITECTURE.md), because LiteDB commits only 1,000-2,500 archive inserts per second here while routing runs
// at over 40,000 messages per second, each archived twice (bench/results/2026-12-02-archive-log.md).
//
// <data>/archive/<collection>/<n>.log holds every append, payload replacement and deletion as a checksummed record
// (LogRecord). One writer thread takes every queued write, appends them in one go and fsyncs once; only then does it
// make them visible to queries and complete their tasks (LogArchiveStore.Writer). The index is kept in blocks of
// hundreds of entries per owner (IndexBlock) in an index file beside the segments (IndexFile), written in large
// batches by a lagging indexer together with the log position it covers (LogArchiveStore.Indexer); what it has not yet
// moved stays in memory (LogOwner) and queries merge both. Accounts, rosters and the rest stay in LiteDB. On open the
// log is replayed from that position and a torn last record is cut off (LogArchiveStore.Recovery).
//
// Space: a segment file is removed once the indexer has passed it and no live record remains in it (deletions only
// ever remove an owner's oldest records, so old segments empty out). Left alone on purpose: compaction of segments
// still partly live (one old record of a quiet owner keeps its whole segment), and fsync of the directory after a new
// segment is created (a power loss right after a roll could lose the new file's entry; a killed process cannot).
// Queries decode all of the owner's index blocks, so their cost grows with the owner's archive.
internal sealed partial class LogArchiveStore : IArchiveStore, IAsyncDisposable
{
    public const long DefaultSegmentBytes = 64L * 1024 * 1024;
    // The open database, for reads (replaced after a full disk, see LiteDbWriter).
    private LiteDatabase Db => _writer.Database;
    private readonly LiteDbWriter _writer;
    private readonly string _name;
    private readonly SegmentFiles _segments;
    private readonly IndexFile _index;
    private readonly Channel<LogWrite> _queue = Channel.CreateUnbounded<LogWrite>(new UnboundedChannelOptions { SingleReader = true });

    // Guards the index state below; held only for short in-memory steps, never across I/O.
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LogOwner> _owners = new(StringComparer.Ordinal);
    private readonly HashSet<LogOwner> _unindexed = [];
    private readonly Dictionary<int, long> _live = [];
    private (int Segment, long Offset) _applied;
    private long _appliedLastId;
    private int _tailCount;

    private int _pending;
    private volatile Exception? _fault;
    private readonly StorageStall? _stall;
    private volatile bool _closing;

    public LogArchiveStore(LiteDbWriter writer, string dataDirectory, string name, long segmentBytes = DefaultSegmentBytes,
        long indexCompactBytes = IndexFile.DefaultCompactBytes, StorageStall? stall = null)
    {
        _stall = stall;
        _writer = writer;
        _name = name;
        _segments = new SegmentFiles(Path.Combine(dataDirectory, "archive", name), segmentBytes);
        _index = new IndexFile(Path.Combine(dataDirectory, "archive", name), indexCompactBytes);
        Recover();
        Migrate();
        _writerThread = new Thread(Run) { IsBackground = true, Name = "Archive log " + name };
        _writerThread.Start();
        _indexerThread = new Thread(IndexLoop) { IsBackground = true, Name = "Archive index " + name };
        _indexerThread.Start();
    }

    // Writes queued and not yet durable or failed.
    public int Pending => Volatile.Read(ref _pending);

    public ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null)
    {
        ArgumentNullException.ThrowIfNull(with);
        return new(Enqueue(new LogWrite(LogRecordKind.Append, owner, 0, stamp.UtcTicks, with, stanzaId, payload)));
    }

    public async ValueTask<bool> ReplaceAsync(string owner, long id, ReadOnlyMemory<byte> payload) =>
        await Enqueue(new LogWrite(LogRecordKind.Replace, owner, id, 0, "", null, payload)).ConfigureAwait(false) != 0;

    public async ValueTask<int> DeleteThroughAsync(string owner, long id) =>
        id < 1 ? 0 : (int)await Enqueue(new LogWrite(LogRecordKind.DeleteThrough, owner, id, 0, "", null, default)).ConfigureAwait(false);

    public async ValueTask DeleteAllAsync(string owner) =>
        await Enqueue(new LogWrite(LogRecordKind.DeleteThrough, owner, LogWrite.Everything, 0, "", null, default)).ConfigureAwait(false);

    private Task<long> Enqueue(LogWrite write)
    {
        Interlocked.Increment(ref _pending);
        // Counted before it enters the queue, so a flush asked for once this returns waits for it (FlushWaiters).
        write.Queued = true;
        _flushes.Queued();
        var task = write.Task;
        if (!_queue.Writer.TryWrite(write))
            Fail(write, _fault ?? new ObjectDisposedException(nameof(LogArchiveStore)));
        return task;
    }

    private void Complete(LogWrite write)
    {
        if (write.Complete()) Interlocked.Decrement(ref _pending);
    }

    private void Fail(LogWrite write, Exception error)
    {
        if (write.Fail(error)) Interlocked.Decrement(ref _pending);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        _closing = true;
        await _writerStopped.Task.ConfigureAwait(false);
        _stopping.Cancel();
        await _indexerStopped.Task.ConfigureAwait(false);
        // What is indexed now need not be replayed on the next open.
        if (_fault is null)
            IndexPass();
        _segments.Dispose();
        _index.Dispose();
        _stopping.Dispose();
    }
}
