using System.Collections.Concurrent;
using System.Globalization;
using LiteDB;

namespace Xmpp.Storage.LiteDb;

// The embedded default: one file, <dataDirectory>/xmpp.db, opened once for the process. Reads run on the caller's
// thread (LiteDB is thread-safe and a write's task completes only after its commit, so a read after it sees it);
// every write goes through the single group-commit writer.
public sealed class LiteDbStorage : IStorage
{
    public const string FileName = "xmpp.db";

    private readonly LiteDatabase _db;
    private readonly LiteDbWriter _writer;
    private readonly ConcurrentDictionary<string, LiteDbArchiveStore> _archives = new(StringComparer.Ordinal);
    private int _disposed;

    public LiteDbStorage(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        _db = new LiteDatabase(new ConnectionString
        {
            Filename = Path.Combine(dataDirectory, FileName),
            // Direct: this process owns the file; no cross-process mutex on every operation as in Shared mode.
            Connection = ConnectionType.Direct,
            // Only applies when the file is created. Ordinal, because LiteDB's default collation ignores case and
            // would merge "Alice" and "alice"; usernames and JIDs arrive already normalized (RFC 7622 §3.2, §3.3).
            Collation = new Collation(CultureInfo.InvariantCulture.LCID, CompareOptions.Ordinal),
        });
        _writer = new LiteDbWriter(_db);
        Accounts = new LiteDbAccountStore(_db, _writer);
        Rosters = new LiteDbRosterStore(_db, _writer);
        KeyValue = new LiteDbKeyValueStore(_db, _writer);
        Uploads = new LiteDbUploadStore(_db, _writer);
    }

    public IAccountStore Accounts { get; }

    public IRosterStore Rosters { get; }

    public IKeyValueStore KeyValue { get; }

    public IUploadStore Uploads { get; }

    // Transactions committed so far; each holds a group of writes.
    internal long Commits => _writer.Commits;

    internal LiteDatabase Database => _db;

    public IArchiveStore Archive(string collection)
    {
        ArchiveCollectionName.Validate(collection);
        return _archives.GetOrAdd(collection, name =>
        {
            var store = new LiteDbArchiveStore(_db, _writer, name);
            _ = store.EnsureIndexesAsync();
            return store;
        });
    }

    public Task FlushAsync() => _writer.FlushAsync();

    public int PendingWrites => _writer.Pending;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            await _writer.DisposeAsync().ConfigureAwait(false);
            // Leaves the log empty, so the next start has nothing to replay.
            _db.Checkpoint();
        }
        finally
        {
            _db.Dispose();
        }
    }
}
