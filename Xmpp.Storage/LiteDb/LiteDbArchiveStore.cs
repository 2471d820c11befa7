using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "archive_<name>": _id = the record id; "ownerKey" = owner U+0001 id and "withKey" = owner U+0001 with
// U+0001 id are the (owner, id) and (owner, with, id) indexes, so a page is one index range read in either direction.
// Ids come from the "sequences" collection, advanced in the same transaction as the insert, so they stay monotonic
// across restarts even after every record was deleted.
internal sealed class LiteDbArchiveStore : IArchiveStore
{
    private const string SequencesName = "sequences";
    private const string OwnerKey = "ownerKey";
    private const string WithKey = "withKey";

    private readonly LiteDatabase _db;
    private readonly LiteDbWriter _writer;
    private readonly string _name;
    private readonly string _collectionName;

    public LiteDbArchiveStore(LiteDatabase db, LiteDbWriter writer, string name)
    {
        _db = db;
        _writer = writer;
        _name = name;
        _collectionName = "archive_" + name;
    }

    // Creating an index is a write, so it is queued like any other; queries before it completes are still correct,
    // only slower.
    public Task EnsureIndexesAsync() => _writer.Enqueue(db =>
    {
        var records = db.GetCollection(_collectionName);
        records.EnsureIndex(OwnerKey, unique: true);
        records.EnsureIndex(WithKey, unique: true);
        return true;
    });

    public ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null)
    {
        var prefix = LiteDbKeys.Prefix(owner);
        var withPrefix = prefix + LiteDbKeys.Prefix(with);
        var document = new BsonDocument
        {
            ["owner"] = owner,
            ["with"] = with,
            ["stamp"] = LiteDbKeys.Ticks(stamp),
            ["payload"] = payload.ToArray(),
            ["stanzaId"] = stanzaId is null ? BsonValue.Null : new BsonValue(stanzaId),
        };
        return new(_writer.Enqueue(db =>
        {
            var sequences = db.GetCollection(SequencesName);
            var id = (sequences.FindById(_name)?["last"].AsInt64 ?? 0) + 1;
            sequences.Upsert(new BsonDocument { ["_id"] = _name, ["last"] = id });
            var number = LiteDbKeys.Number(id);
            document["_id"] = id;
            document[OwnerKey] = prefix + number;
            document[WithKey] = withPrefix + number;
            db.GetCollection(_collectionName).Insert(document);
            return id;
        }));
    }

    public ValueTask<ArchivePage> QueryAsync(ArchiveQuery query)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(query.Max);
        if (query.StanzaIds is { Count: 0 })
            return ValueTask.FromResult(new ArchivePage([], true, 0));

        var (field, prefix) = query.With is null
            ? (OwnerKey, LiteDbKeys.Prefix(query.Owner))
            : (WithKey, LiteDbKeys.Prefix(query.Owner) + LiteDbKeys.Prefix(query.With));
        var filters = new List<BsonExpression>();
        if (query.Start is { } start)
            filters.Add(Query.GTE("stamp", LiteDbKeys.Ticks(start)));
        if (query.End is { } end)
            filters.Add(Query.LTE("stamp", LiteDbKeys.Ticks(end)));
        if (query.StanzaIds is { } ids)
            filters.Add(Query.In("stanzaId", new BsonArray(ids.Select(i => new BsonValue(i)))));

        var records = _db.GetCollection(_collectionName);
        // The RSM cursors narrow the window but not the result set whose size <count/> reports (XEP-0059 §2.6).
        var total = records.Count(Where(IdRange(field, prefix, 1, long.MaxValue), filters));

        var low = query.AfterId is { } after ? Math.Max(after, 0) + 1 : 1;
        var high = query.BeforeId is { } before ? before - 1 : long.MaxValue;
        if (low > high || low <= 0)
            return ValueTask.FromResult(new ArchivePage([], true, total));

        // One record more than asked says whether the page is the last one in this direction.
        var take = query.Max == int.MaxValue ? int.MaxValue : query.Max + 1;
        var queryable = records.Query().Where(Where(IdRange(field, prefix, low, high), filters));
        var documents = (query.Reverse ? queryable.OrderByDescending(field) : queryable.OrderBy(field))
            .Limit(take).ToList();
        var complete = documents.Count <= query.Max;
        var page = documents.Take(query.Max).Select(FromDocument).ToList();
        if (query.Reverse)
            page.Reverse();
        return ValueTask.FromResult(new ArchivePage(page, complete, total));
    }

    public ValueTask<int> DeleteThroughAsync(string owner, long id)
    {
        if (id < 1)
            return ValueTask.FromResult(0);
        var range = IdRange(OwnerKey, LiteDbKeys.Prefix(owner), 1, id);
        return new(_writer.Enqueue(db => db.GetCollection(_collectionName).DeleteMany(range)));
    }

    public ValueTask<int> CountAsync(string owner) =>
        ValueTask.FromResult(_db.GetCollection(_collectionName).Count(LiteDbKeys.StartsWith(OwnerKey, LiteDbKeys.Prefix(owner))));

    public ValueTask DeleteAllAsync(string owner)
    {
        var range = LiteDbKeys.StartsWith(OwnerKey, LiteDbKeys.Prefix(owner));
        return new(_writer.Enqueue(db => db.GetCollection(_collectionName).DeleteMany(range)));
    }

    private static BsonExpression IdRange(string field, string prefix, long low, long high) =>
        Query.Between(field, prefix + LiteDbKeys.Number(low), prefix + LiteDbKeys.Number(high));

    private static BsonExpression Where(BsonExpression range, List<BsonExpression> filters) =>
        filters.Aggregate(range, Query.And);

    private static ArchiveRecord FromDocument(BsonDocument document)
    {
        var stanzaId = document["stanzaId"];
        return new ArchiveRecord(
            document["_id"].AsInt64,
            document["owner"].AsString,
            LiteDbKeys.Stamp(document["stamp"]),
            document["with"].AsString,
            document["payload"].AsBinary,
            stanzaId.IsNull ? null : stanzaId.AsString);
    }
}
