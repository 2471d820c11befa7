using System.Buffers.Binary;
using System.Globalization;
using LiteDB;

namespace Xmpp.Storage.Log;

// Consecutive index entries of one owner stored as one LiteDB document, so that one insert covers hundreds of
// archived records: _id = owner U+0001 first id (19 digits, so the ordinal collation orders an owner's blocks by id),
// "last" = last id, "n" = entry count, "e" = the entries packed into one binary value (LiteDB copies a binary value
// as it is; a string per peer and stanza id cost more than the rest of the indexing together, measured). Per entry,
// little-endian: i64 id, i64 stamp, i32 segment, i64 offset, i32 length, i32 n + n bytes UTF-8 peer, i32 n + n bytes
// UTF-8 stanza id (n = -1: none).
internal sealed class IndexBlock
{
    public const int Capacity = 512;

    // New entries are added to the owner's last block only while it is this small; a larger one is left as it is, so
    // an index pass rewrites few entries it wrote before.
    public const int MergeBelow = 128;
    public const char Separator = '\u0001';

    public IndexBlock(string owner, List<LogEntry> entries)
    {
        Owner = owner;
        Entries = entries;
    }

    public string Owner { get; }

    // In id order.
    public List<LogEntry> Entries { get; }

    public static string Prefix(string owner) => owner + Separator;

    public static string Key(string owner, long firstId) => Prefix(owner) + firstId.ToString("D19", CultureInfo.InvariantCulture);

    // Every block of the owner, or those whose first id is at most through.
    public static BsonExpression Range(string owner, long through = long.MaxValue) =>
        Query.Between("_id", Prefix(owner), through == long.MaxValue ? owner + (char)(Separator + 1) : Key(owner, through));

    public static int CountOf(BsonDocument document) => document["n"].AsInt32;

    public string Id => Key(Owner, Entries[0].Id);

    public BsonDocument ToDocument()
    {
        var length = 0;
        foreach (var entry in Entries)
            length += 32 + Utf8Field.Length(entry.With) + Utf8Field.Length(entry.StanzaId);
        var packed = new byte[length];
        var at = 0;
        foreach (var entry in Entries)
        {
            var span = packed.AsSpan(at);
            BinaryPrimitives.WriteInt64LittleEndian(span, entry.Id);
            BinaryPrimitives.WriteInt64LittleEndian(span[8..], entry.Stamp);
            BinaryPrimitives.WriteInt32LittleEndian(span[16..], entry.Location.Segment);
            BinaryPrimitives.WriteInt64LittleEndian(span[20..], entry.Location.Offset);
            BinaryPrimitives.WriteInt32LittleEndian(span[28..], entry.Location.Length);
            at += 32;
            at += Utf8Field.Write(packed.AsSpan(at), entry.With);
            at += Utf8Field.Write(packed.AsSpan(at), entry.StanzaId);
        }
        return new BsonDocument
        {
            ["_id"] = Id,
            ["last"] = Entries[^1].Id,
            ["n"] = Entries.Count,
            ["e"] = packed,
        };
    }

    public static IndexBlock FromDocument(BsonDocument document)
    {
        var key = document["_id"].AsString;
        var packed = document["e"].AsBinary;
        var entries = new List<LogEntry>(CountOf(document));
        var at = 0;
        while (at < packed.Length)
        {
            var span = packed.AsSpan(at);
            var location = new LogLocation(BinaryPrimitives.ReadInt32LittleEndian(span[16..]),
                BinaryPrimitives.ReadInt64LittleEndian(span[20..]), BinaryPrimitives.ReadInt32LittleEndian(span[28..]));
            var id = BinaryPrimitives.ReadInt64LittleEndian(span);
            var stamp = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
            at += 32;
            if (!Utf8Field.TryRead(packed, ref at, out var with) || with is null || !Utf8Field.TryRead(packed, ref at, out var stanzaId))
                throw new InvalidDataException($"Archive index block '{key}' is damaged.");
            entries.Add(new LogEntry(id, stamp, with, stanzaId, location));
        }
        return new IndexBlock(key[..key.LastIndexOf(Separator)], entries);
    }
}
