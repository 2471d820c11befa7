namespace Xmpp.Storage;

// Fenced writes for a room hosted by one cluster node at a time (issue 17): each host holds an epoch, recorded here when
// it takes the room, and every write of the room's state checks that epoch in the same transaction, so a host that lost
// the room (it froze, its lease ran out, another node took the room) cannot overwrite what the new host wrote.
public interface IRoomFence
{
    // Records epoch as the room's current one unless a higher one is recorded; returns the epoch recorded afterwards
    // (equal to epoch when the claim won).
    ValueTask<long> ClaimAsync(string room, long epoch);

    // A document write that happens only while epoch is still the room's current one; false when it was refused.
    ValueTask<bool> SetAsync(string room, long epoch, string owner, string key, ReadOnlyMemory<byte> value);

    ValueTask<bool> DeleteAsync(string room, long epoch, string owner, string key);

    // An archive append under the same condition; the record's id, or null when it was refused.
    ValueTask<long?> AppendAsync(string room, long epoch, string collection, DateTimeOffset stamp, string with,
        ReadOnlyMemory<byte> payload, string? stanzaId);

    // One archive record's payload replaced (IArchiveStore.ReplaceAsync, a moderation tombstone) under the same
    // condition: whether the record was there, or null when the write was refused.
    ValueTask<bool?> ReplaceArchiveAsync(string room, long epoch, string collection, string owner, long id, ReadOnlyMemory<byte> payload);

    // The archive's records of owner deleted (IArchiveStore.DeleteAllAsync) under the same condition.
    ValueTask<bool> DeleteArchiveAsync(string room, long epoch, string collection, string owner);
}
