using System.Globalization;
using LiteDB;
using Xmpp.Storage.Log;

namespace Xmpp.Storage.LiteDb;

// The embedded default: one file, <dataDirectory>/xmpp.db, opened once for the process. Reads run on the caller's
// thread (LiteDB is thread-safe and a write's task completes only after its commit, so a read after it sees it);
// every write goes through the single group-commit writer. The archives (user, room, offline spool) are the exception:
// they keep their records in append-only logs beside the file and only their index in it (see LogArchiveStore for why).
public sealed partial class LiteDbStorage : IStorage, IStorageBackup, IStorageInventory
{
    public const string FileName = "xmpp.db";

    // The collections kept in an archive log; any other stays a LiteDB collection. The offline spool gains too: store
    // 1,400-7,800/s against 320-880/s, drain 1,300-3,300/s against 850-1,850/s (bench/results/2026-12-02-archive-log.md).
    internal static readonly IReadOnlySet<string> LogCollections = new HashSet<string>(StringComparer.Ordinal) { "mam", "muc", "offline" };

    private readonly LiteDbWriter _writer;
    private readonly Dictionary<string, IArchiveStore> _archives = new(StringComparer.Ordinal);
    private readonly string _dataDirectory;
    private readonly IReadOnlySet<string> _logCollections;
    private readonly long _segmentBytes;
    private readonly long _indexCompactBytes;
    private LogArchiveStore[] _logs = [];
    private int _disposed;

    public StorageStall Stall { get; } = new();

    public LiteDbStorage(string dataDirectory)
        : this(dataDirectory, LogCollections)
    {
    }

    // Tests choose which collections use a log, and small segments and index files to see them come and go.
    internal LiteDbStorage(string dataDirectory, IReadOnlySet<string> logCollections, long segmentBytes = LogArchiveStore.DefaultSegmentBytes,
        long indexCompactBytes = IndexFile.DefaultCompactBytes)
    {
        _dataDirectory = dataDirectory;
        _logCollections = logCollections;
        _segmentBytes = segmentBytes;
        _indexCompactBytes = indexCompactBytes;
        Directory.CreateDirectory(dataDirectory);
        var file = Path.Combine(dataDirectory, FileName);
        LiteDatabase db;
        try
        {
            db = Open(file);
            try
            {
                CreateCollections(db);
            }
            catch (Exception)
            {
                try { db.Dispose(); }
                catch (Exception) { /* the first error is the one to report */ }
                throw;
            }
        }
        catch (LiteException ex)
        {
            // LiteDB checks the header page and the file's layout when it opens it: damage found then stops the start
            // (nothing has been written yet), instead of a stack trace or a database that fails later, page by page.
            throw new StorageDamagedException(file, ex.Message, ex);
        }
        _writer = new LiteDbWriter(db, () => Open(file), Stall, dataDirectory);
        Accounts = new LiteDbAccountStore(_writer);
        Rosters = new LiteDbRosterStore(_writer);
        KeyValue = new LiteDbKeyValueStore(_writer);
        Uploads = new LiteDbUploadStore(_writer);
    }

    // Every collection the stores read outside the writer thread. LiteDB 5 fails a read of a collection while another
    // transaction creates it (litedb-org/LiteDB#2792: the reader finds the new collection's page through the shared
    // header and reads it at an older snapshot, "page type must be collection page") and then closes its engine for
    // good, so one unlucky read on a fresh database (the first registration racing a login, `xmppd migrate` reading
    // the target it fills) failed every later write. Creating them here, before any reader or the writer thread
    // exists, means no collection is ever created while it can be read; an archive collection is created before its
    // store is handed out (Archive). "writer" is the writer's group marker.
    internal static readonly string[] FixedCollections =
        ["accounts", "roster", "roster_versions", "kv", "uploads", "sequences", "writer"];

    private static void CreateCollections(LiteDatabase db)
    {
        var missing = FixedCollections.Where(name => !db.CollectionExists(name)).ToArray();
        if (missing.Length == 0)
            return;
        db.BeginTrans();
        foreach (var name in missing)
        {
            // LiteDB creates a collection with its first document; the placeholder goes in the same transaction.
            var collection = db.GetCollection(name);
            collection.Insert(new BsonDocument { ["_id"] = "\u0001create" });
            collection.Delete("\u0001create");
        }
        db.Commit();
        db.Checkpoint();
    }

    private static LiteDatabase Open(string file) =>
        new(new ConnectionString
        {
            Filename = file,
            // Direct: this process owns the file; no cross-process mutex on every operation as in Shared mode.
            Connection = ConnectionType.Direct,
            // Only applies when the file is created. Ordinal, because LiteDB's default collation ignores case and
            // would merge "Alice" and "alice"; usernames and JIDs arrive already normalized (RFC 7622 §3.2, §3.3).
            Collation = new Collation(CultureInfo.InvariantCulture.LCID, CompareOptions.Ordinal),
        });

    public IAccountStore Accounts { get; }

    public IRosterStore Rosters { get; }

    public IKeyValueStore KeyValue { get; }

    public IUploadStore Uploads { get; }

    // Transactions committed so far; each holds a group of writes.
    internal long Commits => _writer.Commits;

    internal LiteDatabase Database => _writer.Database;

    public IArchiveStore Archive(string collection)
    {
        ArchiveCollectionName.Validate(collection);
        // Under a lock, not GetOrAdd: two stores on one log directory would each append to it.
        lock (_archives)
        {
            if (_archives.TryGetValue(collection, out var existing))
                return existing;
            IArchiveStore store;
            if (_logCollections.Contains(collection))
            {
                var log = new LogArchiveStore(_writer, _dataDirectory, collection, _segmentBytes, _indexCompactBytes, Stall);
                Volatile.Write(ref _logs, [.. _logs, log]);
                store = log;
            }
            else
            {
                var liteDbStore = new LiteDbArchiveStore(_writer, collection);
                // Waited for, so the collection exists before anyone can read it (see FixedCollections).
                liteDbStore.EnsureIndexesAsync().GetAwaiter().GetResult();
                store = liteDbStore;
            }
            _archives[collection] = store;
            return store;
        }
    }

    // Asked for by every XEP-0198 ack: nothing is allocated when at most one store has writes pending, and that
    // store's own task is returned, which a log shares between the flushes of one group (LogArchiveStore.Flushes).
    public Task FlushAsync()
    {
        var only = _writer.FlushAsync();
        List<Task>? several = null;
        foreach (var log in Logs())
        {
            var flush = log.FlushAsync();
            if (flush.IsCompletedSuccessfully) continue;
            if (only.IsCompletedSuccessfully) only = flush;
            else (several ??= [only]).Add(flush);
        }
        return several is null ? only : Task.WhenAll(several);
    }

    public int PendingWrites
    {
        get
        {
            var pending = _writer.Pending;
            foreach (var log in Logs())
                pending += log.Pending;
            return pending;
        }
    }

    // The archive logs first (each with its indexer held, see LogArchiveStore.CopyTo), then the LiteDB file from the
    // writer thread between two groups, just after a checkpoint: with no write under way and the log file emptied into
    // it, the file alone holds every commit. Archive folders of collections not opened in this process are idle and
    // copied as they are.
    public async Task BackupAsync(string directory)
    {
        await FlushAsync().ConfigureAwait(false);
        var archive = Path.Combine(_dataDirectory, "archive");
        var opened = new HashSet<string>(StringComparer.Ordinal);
        foreach (var log in Logs())
        {
            opened.Add(log.Name);
            var target = Path.Combine(directory, "archive", log.Name);
            BackupFiles.CreateDirectory(Path.GetDirectoryName(target)!);
            BackupFiles.CreateDirectory(target);
            await Task.Run(() => log.CopyTo(target)).ConfigureAwait(false);
        }
        if (Directory.Exists(archive))
            foreach (var folder in Directory.EnumerateDirectories(archive).Where(f => !opened.Contains(Path.GetFileName(f))))
            {
                var target = Path.Combine(directory, "archive", Path.GetFileName(folder));
                BackupFiles.CreateDirectory(Path.GetDirectoryName(target)!);
                BackupFiles.CreateDirectory(target);
                foreach (var file in Directory.EnumerateFiles(folder))
                    BackupFiles.Copy(file, Path.Combine(target, Path.GetFileName(file)));
            }
        await _writer.RunExclusiveAsync(db =>
        {
            db.Checkpoint();
            BackupFiles.Copy(Path.Combine(_dataDirectory, FileName), Path.Combine(directory, FileName));
        }).ConfigureAwait(false);
    }

    // Read on every queued write (PendingWrites), so a copy replaced when a log is opened rather than a lock.
    private LogArchiveStore[] Logs() => Volatile.Read(ref _logs);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            // The logs first: their last index pass goes through the LiteDB writer.
            foreach (var log in Logs())
                await log.DisposeAsync().ConfigureAwait(false);
            await _writer.DisposeAsync().ConfigureAwait(false);
            // Leaves the log empty, so the next start has nothing to replay; on a full disk that waits for the next
            // start, whose recovery replays the -log file.
            try
            {
                _writer.Database.Checkpoint();
            }
            catch (Exception ex) when (StorageStall.IsOutOfSpaceAnywhere(ex))
            {
            }
            catch (ObjectDisposedException)
            {
                // LiteDB closed itself after an error of its own (it shuts its engine down on any I/O failure): that
                // error has been reported to whoever met it; the next start replays the -log file.
            }
        }
        finally
        {
            try
            {
                _writer.Database.Dispose();
            }
            catch (Exception ex) when (StorageStall.IsOutOfSpaceAnywhere(ex))
            {
                // LiteDB closed itself on the full disk; what it confirmed is in the -log file.
            }
        }
    }
}
