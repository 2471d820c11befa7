using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "kv": _id = owner U+0001 key, so one owner's documents are one range of the primary index.
internal sealed class LiteDbKeyValueStore(LiteDatabase db, LiteDbWriter writer) : IKeyValueStore
{
    private const string CollectionName = "kv";

    public ValueTask<byte[]?> GetAsync(string owner, string key)
    {
        var document = db.GetCollection(CollectionName).FindById(LiteDbKeys.Prefix(owner) + key);
        return ValueTask.FromResult(document?["value"].AsBinary);
    }

    public ValueTask SetAsync(string owner, string key, ReadOnlyMemory<byte> value)
    {
        var document = new BsonDocument { ["_id"] = LiteDbKeys.Prefix(owner) + key, ["value"] = value.ToArray() };
        return new(writer.Enqueue(db => db.GetCollection(CollectionName).Upsert(document)));
    }

    public ValueTask<bool> DeleteAsync(string owner, string key)
    {
        var id = LiteDbKeys.Prefix(owner) + key;
        return new(writer.Enqueue(db => db.GetCollection(CollectionName).Delete(id)));
    }

    public ValueTask DeleteAllAsync(string owner)
    {
        var range = LiteDbKeys.StartsWith("_id", LiteDbKeys.Prefix(owner));
        return new(writer.Enqueue(db => db.GetCollection(CollectionName).DeleteMany(range)));
    }
}
