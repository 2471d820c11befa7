namespace Xmpp.Storage;

// An append-only archive whose ids increase monotonically per collection, across restarts and deletions.
// Within one owner's archive time never runs backwards: a stamp earlier than the owner's newest record is raised to it,
// so id order is also time order and a Start/End filter is one id range (XEP-0313 §3.1 asks for the order of arrival).
public interface IArchiveStore
{
    // Returns the new record's id once the record is durably committed. The payload is handed over: a store may keep
    // the memory as it is until the write completes (or for good), so the caller must not change it afterwards.
    ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null);

    ValueTask<ArchivePage> QueryAsync(ArchiveQuery query);

    // The id of the owner's record with that stanza id, or null when there is none (nor any for an id the store
    // cannot hold, such as one containing U+0001).
    ValueTask<long?> FindIdAsync(string owner, string stanzaId);

    // Replaces the payload of the owner's record with that id, keeping its id, stamp, peer and stanza id (a retraction
    // or moderation tombstone, XEP-0424/XEP-0425 ask that the archived message be replaced, not removed). Returns false
    // when the owner has no such record. Completes once the change is durably committed. The payload is handed over
    // as in AppendAsync.
    ValueTask<bool> ReplaceAsync(string owner, long id, ReadOnlyMemory<byte> payload);

    // Deletes the owner's records with Id <= id and returns how many were deleted.
    ValueTask<int> DeleteThroughAsync(string owner, long id);

    ValueTask<int> CountAsync(string owner);

    ValueTask DeleteAllAsync(string owner);
}
