namespace Xmpp.Storage;

// An append-only archive whose ids increase monotonically per collection, across restarts and deletions.
public interface IArchiveStore
{
    // Returns the new record's id once the record is durably committed.
    ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null);

    ValueTask<ArchivePage> QueryAsync(ArchiveQuery query);

    // Deletes the owner's records with Id <= id and returns how many were deleted.
    ValueTask<int> DeleteThroughAsync(string owner, long id);

    ValueTask<int> CountAsync(string owner);

    ValueTask DeleteAllAsync(string owner);
}
