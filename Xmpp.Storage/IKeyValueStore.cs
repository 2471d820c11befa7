namespace Xmpp.Storage;

// Small opaque documents per account, addressed by a key the owning module chooses.
public interface IKeyValueStore
{
    ValueTask<byte[]?> GetAsync(string owner, string key);

    ValueTask SetAsync(string owner, string key, ReadOnlyMemory<byte> value);

    ValueTask<bool> DeleteAsync(string owner, string key);

    ValueTask DeleteAllAsync(string owner);

    // Every document of one owner, ordered by key (ordinal): for owners that hold a directory, such as a MUC service's rooms.
    ValueTask<IReadOnlyList<KeyValuePair<string, byte[]>>> ListAsync(string owner);
}
