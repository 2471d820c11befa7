using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "archive_<name>": _id = the record id. LiteDB has no compound indexes, so four string keys (see LiteDbKeys)
// carry them, each ending in the zero-padded id:
//   ownerKey = owner|id, withKey = owner|with|id      a page is one index range read in either direction;
//   stampKey = owner|ticks|id                          Start/End become an id range with one index seek each;
//   sidKey   = owner|stanzaId|id                       stanza ids (RSM cursors, XEP-0313 'ids') are one seek each.
// Pages and counts read only index keys (LiteDB's key-only plan: the query touches no field but the index's); only the
// records of the returned page are loaded. Ids come from the "sequences" collection, advanced in the same transaction as
// the insert, so they stay monotonic across restarts even after every record was deleted.
internal sealed class LiteDbArchiveStore : IArchiveStore
{
    private const string SequencesName = "sequences";
    private const string OwnerKey = "ownerKey";
    private const string WithKey = "withKey";
    private const string StampKey = "stampKey";
    private const string SidKey = "sidKey";
    private const int NumberLength = 19;

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
        records.EnsureIndex(StampKey, unique: true);
        records.EnsureIndex(SidKey, unique: true);
        return true;
    });

    public ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null)
    {
        var prefix = LiteDbKeys.Prefix(owner);
        var withPrefix = prefix + LiteDbKeys.Prefix(with);
        var sidPrefix = stanzaId is null ? prefix + LiteDbKeys.Separator : prefix + LiteDbKeys.Prefix(stanzaId);
        var ticks = stamp.UtcTicks;
        var document = new BsonDocument
        {
            ["owner"] = owner,
            ["with"] = with,
            ["payload"] = payload.ToArray(),
            ["stanzaId"] = stanzaId is null ? BsonValue.Null : new BsonValue(stanzaId),
        };
        return new(_writer.Enqueue(db =>
        {
            var sequences = db.GetCollection(SequencesName);
            var id = (sequences.FindById(_name)?["last"].AsInt64 ?? 0) + 1;
            sequences.Upsert(new BsonDocument { ["_id"] = _name, ["last"] = id });
            var records = db.GetCollection(_collectionName);
            // Time never runs backwards within an owner's archive (see IArchiveStore).
            var newest = Keys(records, StampKey, LiteDbKeys.StartsWith(StampKey, prefix), descending: true, 1).FirstOrDefault();
            var effective = newest is null ? ticks : Math.Max(ticks, StampOf(newest, prefix));
            var number = LiteDbKeys.Number(id);
            document["_id"] = id;
            document["stamp"] = effective;
            document[OwnerKey] = prefix + number;
            document[WithKey] = withPrefix + number;
            document[StampKey] = prefix + LiteDbKeys.Number(effective) + LiteDbKeys.Separator + number;
            document[SidKey] = sidPrefix + number;
            records.Insert(document);
            return id;
        }));
    }

    public ValueTask<ArchivePage> QueryAsync(ArchiveQuery query)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(query.Max);
        var records = _db.GetCollection(_collectionName);
        var page = query.StanzaIds is { } stanzaIds ? QueryByStanzaIds(records, query, stanzaIds) : QueryByRange(records, query);
        return ValueTask.FromResult(page);
    }

    public ValueTask<long?> FindIdAsync(string owner, string stanzaId)
    {
        if (stanzaId.Contains(LiteDbKeys.Separator))
            return ValueTask.FromResult<long?>(null);
        var records = _db.GetCollection(_collectionName);
        var prefix = LiteDbKeys.Prefix(owner) + LiteDbKeys.Prefix(stanzaId);
        var key = Keys(records, SidKey, LiteDbKeys.StartsWith(SidKey, prefix), descending: false, 1).FirstOrDefault();
        return ValueTask.FromResult(key is null ? null : (long?)IdOf(key));
    }

    public ValueTask<int> DeleteThroughAsync(string owner, long id)
    {
        if (id < 1)
            return ValueTask.FromResult(0);
        var range = IdRange(OwnerKey, LiteDbKeys.Prefix(owner), 1, id);
        return new(_writer.Enqueue(db => db.GetCollection(_collectionName).DeleteMany(range)));
    }

    public ValueTask<int> CountAsync(string owner)
    {
        var records = _db.GetCollection(_collectionName);
        return ValueTask.FromResult(CountKeys(records, OwnerKey, LiteDbKeys.StartsWith(OwnerKey, LiteDbKeys.Prefix(owner))));
    }

    public ValueTask DeleteAllAsync(string owner)
    {
        var range = LiteDbKeys.StartsWith(OwnerKey, LiteDbKeys.Prefix(owner));
        return new(_writer.Enqueue(db => db.GetCollection(_collectionName).DeleteMany(range)));
    }

    // With, Start and End narrow one contiguous id range of the owner (or owner+with) index; the cursors narrow it further.
    private ArchivePage QueryByRange(ILiteCollection<BsonDocument> records, ArchiveQuery query)
    {
        var ownerPrefix = LiteDbKeys.Prefix(query.Owner);
        var (field, prefix) = query.With is null ? (OwnerKey, ownerPrefix) : (WithKey, ownerPrefix + LiteDbKeys.Prefix(query.With));
        long low = 1, high = long.MaxValue;
        if (query.Start is { } start)
        {
            var from = ownerPrefix + LiteDbKeys.Number(start.UtcTicks);
            var first = Keys(records, StampKey, Query.Between(StampKey, from, ownerPrefix[..^1] + (char)(LiteDbKeys.Separator + 1)), false, 1)
                .FirstOrDefault();
            if (first is null)
                return Empty(0);
            low = IdOf(first);
        }
        if (query.End is { } end)
        {
            var through = ownerPrefix + LiteDbKeys.Number(end.UtcTicks) + (char)(LiteDbKeys.Separator + 1);
            var last = Keys(records, StampKey, Query.Between(StampKey, ownerPrefix, through), true, 1).FirstOrDefault();
            if (last is null)
                return Empty(0);
            high = IdOf(last);
        }
        if (low > high)
            return Empty(0);

        // The RSM cursors narrow the window but not the result set whose size <count/> reports (XEP-0059 §2.6).
        var total = CountKeys(records, field, IdRange(field, prefix, low, high));
        if (query.AfterId is { } after)
            low = Math.Max(low, Math.Max(after, 0) + 1);
        if (query.BeforeId is { } before)
            high = Math.Min(high, before - 1);
        if (low > high || low <= 0)
            return Empty(total);

        // One record more than asked says whether the page is the last one in this direction.
        var take = query.Max == int.MaxValue ? int.MaxValue : query.Max + 1;
        var keys = Keys(records, field, IdRange(field, prefix, low, high), query.Reverse, take);
        var complete = keys.Count <= query.Max;
        var ids = keys.Take(query.Max).Select(IdOf).ToList();
        if (query.Reverse)
            ids.Reverse();
        // A record deleted between reading its key and loading it is simply not in the page.
        var page = ids.Select(id => records.FindById(id)).OfType<BsonDocument>().Select(FromDocument).ToList();
        return new ArchivePage(page, complete, total);
    }

    // XEP-0313 'ids': each stanza id is one seek; the other filters apply to the (few) records found.
    private static ArchivePage QueryByStanzaIds(ILiteCollection<BsonDocument> records, ArchiveQuery query, IReadOnlyList<string> stanzaIds)
    {
        var ownerPrefix = LiteDbKeys.Prefix(query.Owner);
        var matching = new SortedDictionary<long, ArchiveRecord>();
        foreach (var stanzaId in stanzaIds.Distinct(StringComparer.Ordinal))
        {
            if (stanzaId.Contains(LiteDbKeys.Separator))
                continue;
            var range = LiteDbKeys.StartsWith(SidKey, ownerPrefix + LiteDbKeys.Prefix(stanzaId));
            foreach (var key in Keys(records, SidKey, range, false, int.MaxValue))
            {
                if (records.FindById(IdOf(key)) is not { } document)
                    continue;
                var record = FromDocument(document);
                if ((query.With is null || record.With == query.With)
                    && (query.Start is null || record.Stamp >= query.Start)
                    && (query.End is null || record.Stamp <= query.End))
                    matching[record.Id] = record;
            }
        }
        var window = matching.Values.Where(r =>
                (query.AfterId is null || r.Id > query.AfterId) && (query.BeforeId is null || r.Id < query.BeforeId))
            .ToList();
        var complete = window.Count <= query.Max;
        var page = query.Reverse ? window.Skip(Math.Max(0, window.Count - query.Max)) : window.Take(query.Max);
        return new ArchivePage(page.ToList(), complete, matching.Count);
    }

    // Reads only the keys of one index (no document is loaded), in index order.
    private static List<string> Keys(ILiteCollection<BsonDocument> records, string field, BsonExpression range, bool descending, int take)
    {
        var queryable = records.Query().Where(range);
        queryable = descending ? queryable.OrderByDescending(field) : queryable.OrderBy(field);
        return queryable.Select(BsonExpression.Create("{ k: $." + field + " }")).Limit(take).ToDocuments()
            .Select(d => d["k"].AsString).ToList();
    }

    private static int CountKeys(ILiteCollection<BsonDocument> records, string field, BsonExpression range) =>
        records.Query().Where(range).Select(BsonExpression.Create("{ k: $." + field + " }")).ToDocuments().Count();

    private static long IdOf(string key) => long.Parse(key.AsSpan(key.Length - NumberLength), provider: System.Globalization.CultureInfo.InvariantCulture);

    private static long StampOf(string stampKey, string ownerPrefix) =>
        long.Parse(stampKey.AsSpan(ownerPrefix.Length, NumberLength), provider: System.Globalization.CultureInfo.InvariantCulture);

    private static ArchivePage Empty(int total) => new([], true, total);

    private static BsonExpression IdRange(string field, string prefix, long low, long high) =>
        Query.Between(field, prefix + LiteDbKeys.Number(low), prefix + LiteDbKeys.Number(high));

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
