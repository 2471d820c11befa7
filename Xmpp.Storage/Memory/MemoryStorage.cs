using System.Collections.Concurrent;

namespace Xmpp.Storage.Memory;

// Everything lives in this instance and is gone when it is dropped: for tests and throw-away servers.
public sealed class MemoryStorage : IStorage
{
    private readonly ConcurrentDictionary<string, MemoryArchiveStore> _archives = new(StringComparer.Ordinal);

    public MemoryStorage()
    {
        Accounts = new MemoryAccountStore();
        Rosters = new MemoryRosterStore();
        KeyValue = new MemoryKeyValueStore();
        Uploads = new MemoryUploadStore();
    }

    public IAccountStore Accounts { get; }

    public IRosterStore Rosters { get; }

    public IKeyValueStore KeyValue { get; }

    public IUploadStore Uploads { get; }

    public IArchiveStore Archive(string collection)
    {
        ArchiveCollectionName.Validate(collection);
        return _archives.GetOrAdd(collection, static _ => new MemoryArchiveStore());
    }

    // Every write completes synchronously, so there is never anything queued.
    public Task FlushAsync() => Task.CompletedTask;

    public int PendingWrites => 0;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
