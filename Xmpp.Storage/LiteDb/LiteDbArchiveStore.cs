using System.Globalization;
using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "archive_<name>": _id = the record id. LiteDB has no compound indexes, so string keys (see LiteDbKeys)
// carry them, numbers zero-padded:
//   ownerKey = owner|id|n      n = the record's ordinal among the owner's records (1, 2, 3...)
//   withKey  = owner|with|id|n n = its ordinal among the owner's records with that peer
//   stampKey = owner|ticks|id  Start/End become an id range with one index seek each
//   sidKey   = owner|stanzaId|id  a stanza id (RSM cursor, XEP-0313 'ids') is one seek
// A page is one range of ownerKey or withKey read in either direction, and because records are only ever deleted
// from the oldest end (DeleteThrough, DeleteAll) the ordinals of a range's first and last key give its size: counting
// costs two seeks, not a walk over the owner's records. Cursor and count work reads index keys only (LiteDB's key-only
// plan); only the page's records are loaded. Ids come from the "sequences" collection, advanced in the same transaction
// as the insert, so they stay monotonic across restarts even after every record was deleted.
internal sealed class LiteDbArchiveStore : IArchiveStore
{
    private const string SequencesName = "sequences";
    private const string OwnerKey = "ownerKey";
    private const string WithKey = "withKey";
    private const string StampKey = "stampKey";
    private const string SidKey = "sidKey";
    private const int NumberLength = 19;

    private readonly LiteDbWriter _writer;
    private readonly string _name;
    private readonly string _collectionName;

    // What appends last wrote, kept on the writer thread (the only one that touches them) so an append costs an insert
    // and no index seeks: the last id, per owner its newest stamp and last ordinal, per owner and peer the last ordinal.
    // Filled from the indexes on first use, dropped whenever a group rolls back.
    private long _lastId = -1;
    private bool _sequenceDirty;
    private readonly Dictionary<string, (long Stamp, long Ordinal)> _owners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _peers = new(StringComparer.Ordinal);

    public LiteDbArchiveStore(LiteDbWriter writer, string name)
    {
        _writer = writer;
        _name = name;
        _collectionName = "archive_" + name;
        writer.BeforeCommit += db =>
        {
            if (!_sequenceDirty) return;
            db.GetCollection(SequencesName).Upsert(new BsonDocument { ["_id"] = _name, ["last"] = _lastId });
            _sequenceDirty = false;
        };
        writer.RolledBack += () =>
        {
            _sequenceDirty = false;
            _lastId = -1;
            _owners.Clear();
            _peers.Clear();
        };
    }

    // Creating an index is a write, so it is queued like any other, ahead of any append. Records written before the
    // current keys existed are re-keyed first (the new unique indexes could not hold their missing keys); the sequences
    // collection remembers that this was done, so only the first open after the upgrade reads every record.
    public Task EnsureIndexesAsync() => _writer.Enqueue(db =>
    {
        var records = db.GetCollection(_collectionName);
        var sequences = db.GetCollection(SequencesName);
        var layoutId = _name + LiteDbKeys.Separator + "layout";
        var migrated = 0;
        if (sequences.FindById(layoutId) is null)
        {
            migrated = Rekey(records);
            sequences.Upsert(new BsonDocument { ["_id"] = layoutId, ["keys"] = 2 });
        }
        records.EnsureIndex(OwnerKey, unique: true);
        records.EnsureIndex(WithKey, unique: true);
        records.EnsureIndex(StampKey, unique: true);
        records.EnsureIndex(SidKey, unique: true);
        return migrated;
    });

    private static int Rekey(ILiteCollection<BsonDocument> records)
    {
        var old = records.FindAll().Where(d => !d.ContainsKey(StampKey)).OrderBy(d => d["_id"].AsInt64).ToList();
        var newest = new Dictionary<string, long>(StringComparer.Ordinal);
        var ordinals = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var document in old)
        {
            var owner = document["owner"].AsString;
            var with = document["with"].AsString;
            var withKey = LiteDbKeys.Prefix(owner) + with;
            var stamp = Math.Max(document["stamp"].AsInt64, newest.GetValueOrDefault(owner, long.MinValue));
            newest[owner] = stamp;
            var ownerOrdinal = ordinals[owner] = ordinals.GetValueOrDefault(owner) + 1;
            var withOrdinal = ordinals[withKey] = ordinals.GetValueOrDefault(withKey) + 1;
            SetKeys(document, document["_id"].AsInt64, owner, with, stamp, ownerOrdinal, withOrdinal,
                document["stanzaId"].IsNull ? null : document["stanzaId"].AsString);
            records.Update(document);
        }
        return old.Count;
    }

    public ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null)
    {
        LiteDbKeys.Prefix(owner);
        LiteDbKeys.Prefix(with);
        if (stanzaId is not null) LiteDbKeys.Prefix(stanzaId);
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
            if (_lastId < 0) _lastId = sequences.FindById(_name)?["last"].AsInt64 ?? 0;
            var id = _lastId + 1;
            var records = db.GetCollection(_collectionName);
            var prefix = LiteDbKeys.Prefix(owner);
            if (!_owners.TryGetValue(owner, out var last))
            {
                var newest = Keys(records, StampKey, LiteDbKeys.StartsWith(StampKey, prefix), descending: true, 1).FirstOrDefault();
                var lastOfOwner = Keys(records, OwnerKey, LiteDbKeys.StartsWith(OwnerKey, prefix), descending: true, 1).FirstOrDefault();
                last = (newest is null ? long.MinValue : Number(newest, prefix.Length), lastOfOwner is null ? 0 : OrdinalOf(lastOfOwner));
            }
            var withPrefix = prefix + LiteDbKeys.Prefix(with);
            if (!_peers.TryGetValue(withPrefix, out var lastWith))
            {
                var lastWithPeer = Keys(records, WithKey, LiteDbKeys.StartsWith(WithKey, withPrefix), descending: true, 1).FirstOrDefault();
                lastWith = lastWithPeer is null ? 0 : OrdinalOf(lastWithPeer);
            }
            // Time never runs backwards within an owner's archive (see IArchiveStore).
            var stamp = Math.Max(ticks, last.Stamp);
            SetKeys(document, id, owner, with, stamp, last.Ordinal + 1, lastWith + 1, stanzaId);
            records.Insert(document);
            _lastId = id;
            _sequenceDirty = true; // written once for the whole group, just before it commits
            _owners[owner] = (stamp, last.Ordinal + 1);
            _peers[withPrefix] = lastWith + 1;
            return id;
        }));
    }

    private static void SetKeys(BsonDocument document, long id, string owner, string with, long stamp, long ownerOrdinal, long withOrdinal, string? stanzaId)
    {
        var prefix = LiteDbKeys.Prefix(owner);
        var number = LiteDbKeys.Number(id);
        document["_id"] = id;
        document["stamp"] = stamp;
        document[OwnerKey] = prefix + number + LiteDbKeys.Separator + LiteDbKeys.Number(ownerOrdinal);
        document[WithKey] = prefix + LiteDbKeys.Prefix(with) + number + LiteDbKeys.Separator + LiteDbKeys.Number(withOrdinal);
        document[StampKey] = prefix + LiteDbKeys.Number(stamp) + LiteDbKeys.Separator + number;
        document[SidKey] = (stanzaId is null ? prefix + LiteDbKeys.Separator : prefix + LiteDbKeys.Prefix(stanzaId)) + number;
    }

    public ValueTask<ArchivePage> QueryAsync(ArchiveQuery query)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(query.Max);
        return _writer.ReadAsync(db =>
        {
            var records = db.GetCollection(_collectionName);
            return query.StanzaIds is { } stanzaIds ? QueryByStanzaIds(records, query, stanzaIds) : QueryByRange(records, query);
        });
    }

    public ValueTask<long?> FindIdAsync(string owner, string stanzaId)
    {
        if (stanzaId.Length == 0 || stanzaId.Contains(LiteDbKeys.Separator))
            return ValueTask.FromResult<long?>(null);
        var prefix = LiteDbKeys.Prefix(owner) + LiteDbKeys.Prefix(stanzaId);
        return _writer.ReadAsync(db => Keys(db.GetCollection(_collectionName), SidKey, LiteDbKeys.StartsWith(SidKey, prefix), descending: false, 1)
            .FirstOrDefault() is { } key ? Number(key, key.Length - NumberLength) : (long?)null);
    }

    public ValueTask<bool> ReplaceAsync(string owner, long id, ReadOnlyMemory<byte> payload)
    {
        var bytes = payload.ToArray();
        return new(_writer.Enqueue(db =>
        {
            var records = db.GetCollection(_collectionName);
            if (records.FindById(id) is not { } document || document["owner"].AsString != owner)
                return false;
            document["payload"] = bytes;
            return records.Update(document);
        }));
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
        return _writer.ReadAsync(db => Count(db.GetCollection(_collectionName), OwnerKey, LiteDbKeys.StartsWith(OwnerKey, LiteDbKeys.Prefix(owner))));
    }

    public ValueTask DeleteAllAsync(string owner)
    {
        var range = LiteDbKeys.StartsWith(OwnerKey, LiteDbKeys.Prefix(owner));
        return new(_writer.Enqueue(db => db.GetCollection(_collectionName).DeleteMany(range)));
    }

    // With, Start and End narrow one contiguous id range of the owner (or owner+with) index; the cursors narrow it further.
    private static ArchivePage QueryByRange(ILiteCollection<BsonDocument> records, ArchiveQuery query)
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
            low = Number(first, first.Length - NumberLength);
        }
        if (query.End is { } end)
        {
            var through = ownerPrefix + LiteDbKeys.Number(end.UtcTicks) + (char)(LiteDbKeys.Separator + 1);
            var last = Keys(records, StampKey, Query.Between(StampKey, ownerPrefix, through), true, 1).FirstOrDefault();
            if (last is null)
                return Empty(0);
            high = Number(last, last.Length - NumberLength);
        }
        if (low > high)
            return Empty(0);

        // The RSM cursors narrow the window but not the result set whose size <count/> reports (XEP-0059 §2.6).
        var total = Count(records, field, IdRange(field, prefix, low, high));
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
        if (query.Max == 0 || keys.Count == 0)
            return new ArchivePage([], complete, total);
        var ids = keys.Take(query.Max).Select(IdOf).ToList();
        // The page is one contiguous stretch of the index: load its records with one range read.
        var documents = records.Query().Where(IdRange(field, prefix, ids.Min(), ids.Max())).OrderBy(field).ToList();
        return new ArchivePage(documents.Select(FromDocument).ToList(), complete, total);
    }

    // XEP-0313 'ids': each stanza id is one seek; the other filters apply to the (few) records found.
    private static ArchivePage QueryByStanzaIds(ILiteCollection<BsonDocument> records, ArchiveQuery query, IReadOnlyList<string> stanzaIds)
    {
        var ownerPrefix = LiteDbKeys.Prefix(query.Owner);
        var matching = new SortedDictionary<long, ArchiveRecord>();
        foreach (var stanzaId in stanzaIds.Distinct(StringComparer.Ordinal))
        {
            if (stanzaId.Length == 0 || stanzaId.Contains(LiteDbKeys.Separator))
                continue;
            var range = LiteDbKeys.StartsWith(SidKey, ownerPrefix + LiteDbKeys.Prefix(stanzaId));
            foreach (var key in Keys(records, SidKey, range, false, int.MaxValue))
            {
                if (records.FindById(Number(key, key.Length - NumberLength)) is not { } document)
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

    // The size of a range of ownerKey or withKey from the ordinals at its two ends.
    private static int Count(ILiteCollection<BsonDocument> records, string field, BsonExpression range)
    {
        var first = Keys(records, field, range, false, 1).FirstOrDefault();
        var last = Keys(records, field, range, true, 1).FirstOrDefault();
        return first is null || last is null ? 0 : (int)(OrdinalOf(last) - OrdinalOf(first) + 1);
    }

    // ownerKey and withKey end in id|ordinal.
    private static long IdOf(string key) => Number(key, key.Length - 2 * NumberLength - 1);

    private static long OrdinalOf(string key) => Number(key, key.Length - NumberLength);

    private static long Number(string key, int offset) =>
        long.Parse(key.AsSpan(offset, NumberLength), NumberStyles.None, CultureInfo.InvariantCulture);

    private static ArchivePage Empty(int total) => new([], true, total);

    // Keys of ownerKey or withKey whose id lies in [low, high], whatever ordinal follows.
    private static BsonExpression IdRange(string field, string prefix, long low, long high) =>
        Query.Between(field, prefix + LiteDbKeys.Number(low), prefix + LiteDbKeys.Number(high) + (char)(LiteDbKeys.Separator + 1));

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
