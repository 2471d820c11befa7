using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "uploads": _id = the upload id, indexed by owner (quota) and by creation time (retention).
internal sealed class LiteDbUploadStore : IUploadStore
{
    private const string CollectionName = "uploads";

    private readonly LiteDbWriter _writer;

    public LiteDbUploadStore(LiteDbWriter writer)
    {
        _writer = writer;
        _ = writer.Enqueue(d =>
        {
            var c = d.GetCollection(CollectionName);
            c.EnsureIndex("owner");
            c.EnsureIndex("created");
            return true;
        });
    }

    public ValueTask<bool> AddAsync(UploadRecord record)
    {
        var document = new BsonDocument
        {
            ["_id"] = record.Id,
            ["owner"] = record.Owner,
            ["name"] = record.FileName,
            ["type"] = record.ContentType,
            ["size"] = record.Size,
            ["created"] = LiteDbKeys.Ticks(record.Created),
        };
        return new(_writer.Enqueue(d =>
        {
            var c = d.GetCollection(CollectionName);
            // Checked rather than caught: a duplicate-key exception would roll back the whole group transaction.
            if (c.FindById(record.Id) is not null) return false;
            c.Insert(document);
            return true;
        }));
    }

    public ValueTask<UploadRecord?> GetAsync(string id)
    {
        return _writer.ReadAsync(db => db.GetCollection(CollectionName).FindById(id) is { } document ? FromDocument(document) : null);
    }

    public ValueTask<bool> DeleteAsync(string id) =>
        new(_writer.Enqueue(d => d.GetCollection(CollectionName).Delete(id)));

    public ValueTask<long> UsedBytesAsync(string owner)
    {
        return _writer.ReadAsync(db => db.GetCollection(CollectionName).Find(Query.EQ("owner", owner)).Sum(d => d["size"].AsInt64));
    }

    public ValueTask<IReadOnlyList<UploadRecord>> ListByOwnerAsync(string owner)
    {
        return _writer.ReadAsync<IReadOnlyList<UploadRecord>>(db => db.GetCollection(CollectionName).Find(Query.EQ("owner", owner))
            .Select(FromDocument).OrderBy(r => r.Created).ThenBy(r => r.Id, StringComparer.Ordinal).ToArray());
    }

    public ValueTask<IReadOnlyList<UploadRecord>> ListCreatedBeforeAsync(DateTimeOffset before, int limit)
    {
        return _writer.ReadAsync<IReadOnlyList<UploadRecord>>(db => db.GetCollection(CollectionName)
            .Find(Query.LT("created", LiteDbKeys.Ticks(before)))
            .Select(FromDocument).OrderBy(r => r.Created).ThenBy(r => r.Id, StringComparer.Ordinal).Take(limit).ToArray());
    }

    private static UploadRecord FromDocument(BsonDocument d) => new(
        d["_id"].AsString, d["owner"].AsString, d["name"].AsString, d["type"].AsString,
        d["size"].AsInt64, LiteDbKeys.Stamp(d["created"]));
}
