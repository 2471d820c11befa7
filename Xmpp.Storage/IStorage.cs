namespace Xmpp.Storage;

// The server's only view of persistent data: one small store per kind of data.
public interface IStorage : IAsyncDisposable
{
    IAccountStore Accounts { get; }

    IRosterStore Rosters { get; }

    // An append-only archive of stanzas; "offline" is the offline spool, "mam" and "muc" share the same shape.
    IArchiveStore Archive(string collection);

    // Small per-account documents (private XML, vCard, registrations...).
    IKeyValueStore KeyValue { get; }

    // Metadata of files uploaded over HTTP (XEP-0363).
    IUploadStore Uploads { get; }

    // Completes when every write queued before the call is durably committed.
    Task FlushAsync();

    // Writes queued and not yet committed: callers that queue without waiting (archive, spool) wait instead when
    // this grows past their bound, so a sender faster than the disk is slowed down rather than buffered without end.
    int PendingWrites { get; }

    // Set by stores that hold writes through a full disk instead of failing them (the embedded one); null otherwise.
    StorageStall? Stall => null;
}
