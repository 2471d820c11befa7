using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "kv": _id = owner U+0001 key, so one owner's documents are one range of the primary index.
internal sealed class LiteDbKeyValueStore(LiteDbWriter writer) : IKeyValueStore
{
    private const string CollectionName = "kv";

    public ValueTask<byte[]?> GetAsync(string owner, string key)
    {
        return writer.ReadAsync(db => db.GetCollection(CollectionName).FindById(LiteDbKeys.Prefix(owner) + key)?["value"].AsBinary);
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

    public ValueTask<IReadOnlyList<KeyValuePair<string, byte[]>>> ListAsync(string owner)
    {
        var prefix = LiteDbKeys.Prefix(owner);
        return writer.ReadAsync<IReadOnlyList<KeyValuePair<string, byte[]>>>(db => db.GetCollection(CollectionName)
            .Find(LiteDbKeys.StartsWith("_id", prefix))
            .Select(d => KeyValuePair.Create(d["_id"].AsString[prefix.Length..], d["value"].AsBinary))
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .ToList());
    }

    public ValueTask DeleteAllAsync(string owner)
    {
        var range = LiteDbKeys.StartsWith("_id", LiteDbKeys.Prefix(owner));
        return new(writer.Enqueue(db => db.GetCollection(CollectionName).DeleteMany(range)));
    }
}
