namespace Xmpp.Storage;

// Small opaque documents per account, addressed by a key the owning module chooses.
public interface IKeyValueStore
{
    ValueTask<byte[]?> GetAsync(string owner, string key);

    ValueTask SetAsync(string owner, string key, ReadOnlyMemory<byte> value);

    ValueTask<bool> DeleteAsync(string owner, string key);

    // Read-modify-write of one document: change gets the stored value (null: none) and returns the new one (null
    // deletes); the result is what was stored. A store shared by several processes (PostgreSQL under cluster nodes)
    // runs it as one step under a lock on (owner, key), so two nodes changing the same document never lose an update;
    // change may then run more than once and must only compute. The default suits stores one process owns, whose
    // callers already serialise an account's changes.
    async ValueTask<byte[]?> UpdateAsync(string owner, string key, Func<byte[]?, byte[]?> change)
    {
        var next = change(await GetAsync(owner, key));
        if (next is null) await DeleteAsync(owner, key);
        else await SetAsync(owner, key, next);
        return next;
    }

    ValueTask DeleteAllAsync(string owner);

    // Every document of one owner, ordered by key (ordinal): for owners that hold a directory, such as a MUC service's rooms.
    ValueTask<IReadOnlyList<KeyValuePair<string, byte[]>>> ListAsync(string owner);
}
