using LiteDB;
using LiteDB.Engine;

namespace Xmpp.Storage.LiteDb;

// The database file and its write-ahead log, opened by us and handed to LiteDB as streams, so that we decide when they
// reach the disk. LiteDB 5.0.20, given file names, writes its log page by page and fsyncs after every page
// (DiskWriterQueue: strace shows 8 KiB pwrite64/fsync pairs), so an archive index pass of a few MB cost hundreds of
// fsyncs (bench/profiles/2026-12-02-archive-cpu.md). Here a group costs two: the log once before the checkpoint first
// writes to the data file, and the data file once the checkpoint is done (LiteDbWriter.MakeDurable).
//
// The write-ahead rule that makes a crash during a checkpoint recoverable (every log page durable before any data page
// it redoes is overwritten) is kept by the data stream itself: its first write after log writes fsyncs the log first.
// LiteDB logs whole pages, so replaying a log whose truncation was lost is harmless.
internal sealed class LiteDbFiles : IDisposable
{
    public const string LogSuffix = "-log";

    public LiteDbFiles(string dataPath)
    {
        // The names LiteDB itself uses, so a data folder written before keeps working (and its log is replayed).
        var logPath = Path.Combine(Path.GetDirectoryName(dataPath)!, Path.GetFileNameWithoutExtension(dataPath) + LogSuffix + Path.GetExtension(dataPath));
        Log = new SyncedFile(logPath, null);
        try
        {
            Data = new SyncedFile(dataPath, Log);
        }
        catch
        {
            Log.Dispose();
            throw;
        }
    }

    public SyncedFile Data { get; }

    public SyncedFile Log { get; }

    public LiteDatabase Open(Collation collation) =>
        new(new LiteEngine(new EngineSettings { DataStream = Data, LogStream = Log, Collation = collation }), disposeOnClose: true);

    // After a commit: the checkpoint copies the group's log pages into the data file (the data stream fsyncs the log
    // before its first write) and truncates the log; then the data file is synced. The group is on disk after this,
    // even across a power loss.
    public void MakeDurable(LiteDatabase db)
    {
        db.Checkpoint();
        Log.Sync();
        Data.Sync();
    }

    public void Dispose()
    {
        Data.Dispose();
        Log.Dispose();
    }

    // A file stream whose flushes never reach the disk by themselves (LiteDB calls them after every log page); Sync
    // does. Shared for reading, so a backup can copy it while the server runs.
    internal sealed class SyncedFile(string path, SyncedFile? writeAheadOf)
        : FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0, FileOptions.RandomAccess)
    {
        private int _unsynced;
        private long _syncs;

        // How many times the file was synced to disk: lets tests see that a group costs one, not one per page.
        public long Syncs => Interlocked.Read(ref _syncs);

        // Whether anything was written since the last Sync.
        public bool Unsynced => Volatile.Read(ref _unsynced) != 0;

        public void Sync()
        {
            if (Interlocked.Exchange(ref _unsynced, 0) == 0) return;
            base.Flush(flushToDisk: true);
            Interlocked.Increment(ref _syncs);
        }

        public override void Flush(bool flushToDisk) => base.Flush(flushToDisk: false);

        // A FileStream subclass gets span writes routed here by the base class.
        public override void Write(byte[] buffer, int offset, int count)
        {
            writeAheadOf?.Sync();
            base.Write(buffer, offset, count);
            Written();
        }

        public override void WriteByte(byte value)
        {
            writeAheadOf?.Sync();
            base.WriteByte(value);
            Written();
        }

        // LiteDB writes synchronously; these keep the same rules should it not.
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer, offset, count);
            return Task.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.ToArray(), 0, buffer.Length);
            return ValueTask.CompletedTask;
        }

        public override void SetLength(long value)
        {
            writeAheadOf?.Sync();
            base.SetLength(value);
            Written();
        }

        // Marked after the write: a Sync that races with a write either covers it or leaves the mark for the next one.
        private void Written() => Volatile.Write(ref _unsynced, 1);
    }
}
