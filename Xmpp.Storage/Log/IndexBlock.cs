using System.Buffers.Binary;
using System.Globalization;
using LiteDB;

namespace Xmpp.Storage.Log;

// Up to Capacity consecutive index entries of one owner, stored as one LiteDB document so that one insert covers
// hundreds of archived records: _id = owner U+0001 first id (19 digits, so the ordinal collation orders an owner's
// blocks by id), "last" = last id, "e" = 32 bytes per entry (id, stamp, segment, offset, length), "w" the peers,
// "s" the stanza ids (null where none).
internal sealed class IndexBlock
{
    public const int Capacity = 512;
    public const char Separator = '\u0001';
    private const int EntryBytes = 32;

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

    public string Id => Key(Owner, Entries[0].Id);

    public BsonDocument ToDocument()
    {
        var packed = new byte[Entries.Count * EntryBytes];
        var withs = new BsonArray();
        var stanzaIds = new BsonArray();
        for (var i = 0; i < Entries.Count; i++)
        {
            var entry = Entries[i];
            var span = packed.AsSpan(i * EntryBytes, EntryBytes);
            BinaryPrimitives.WriteInt64LittleEndian(span, entry.Id);
            BinaryPrimitives.WriteInt64LittleEndian(span[8..], entry.Stamp);
            BinaryPrimitives.WriteInt32LittleEndian(span[16..], entry.Location.Segment);
            BinaryPrimitives.WriteInt64LittleEndian(span[20..], entry.Location.Offset);
            BinaryPrimitives.WriteInt32LittleEndian(span[28..], entry.Location.Length);
            withs.Add(entry.With);
            stanzaIds.Add(entry.StanzaId is null ? BsonValue.Null : new BsonValue(entry.StanzaId));
        }
        return new BsonDocument
        {
            ["_id"] = Id,
            ["last"] = Entries[^1].Id,
            ["e"] = packed,
            ["w"] = withs,
            ["s"] = stanzaIds,
        };
    }

    public static IndexBlock FromDocument(BsonDocument document)
    {
        var key = document["_id"].AsString;
        var owner = key[..key.LastIndexOf(Separator)];
        var packed = document["e"].AsBinary;
        var withs = document["w"].AsArray;
        var stanzaIds = document["s"].AsArray;
        var entries = new List<LogEntry>(packed.Length / EntryBytes);
        for (var i = 0; i < packed.Length / EntryBytes; i++)
        {
            var span = packed.AsSpan(i * EntryBytes, EntryBytes);
            var location = new LogLocation(BinaryPrimitives.ReadInt32LittleEndian(span[16..]),
                BinaryPrimitives.ReadInt64LittleEndian(span[20..]), BinaryPrimitives.ReadInt32LittleEndian(span[28..]));
            entries.Add(new LogEntry(BinaryPrimitives.ReadInt64LittleEndian(span), BinaryPrimitives.ReadInt64LittleEndian(span[8..]),
                withs[i].AsString, stanzaIds[i].IsNull ? null : stanzaIds[i].AsString, location));
        }
        return new IndexBlock(owner, entries);
    }
}
