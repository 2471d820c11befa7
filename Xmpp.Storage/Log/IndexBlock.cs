using System.Buffers.Binary;
using LiteDB;

namespace Xmpp.Storage.Log;

// Consecutive index entries of one owner, packed into one value so that one write covers hundreds of archived records.
// Per entry, little-endian: i64 id, i64 stamp, i32 segment, i64 offset, i32 length, i32 n + n bytes UTF-8 peer,
// i32 n + n bytes UTF-8 stanza id (n = -1: none). Blocks live in the collection's index file (IndexFile); before that
// they were LiteDB documents (_id = owner U+0001 first id, "e" = the packed entries), read only to migrate them.
internal static class IndexBlock
{
    public const int Capacity = 512;

    // New entries are added to the owner's last block only while it is this small; a larger one is left as it is, so
    // an index pass rewrites few entries it wrote before.
    public const int MergeBelow = 128;
    public const char Separator = '\u0001';

    public static int PackedLength(ReadOnlySpan<LogEntry> entries)
    {
        var length = 0;
        foreach (var entry in entries)
            length += 32 + Utf8Field.Length(entry.With) + Utf8Field.Length(entry.StanzaId);
        return length;
    }

    public static int Pack(ReadOnlySpan<LogEntry> entries, Span<byte> output)
    {
        var at = 0;
        foreach (var entry in entries)
        {
            var span = output[at..];
            BinaryPrimitives.WriteInt64LittleEndian(span, entry.Id);
            BinaryPrimitives.WriteInt64LittleEndian(span[8..], entry.Stamp);
            BinaryPrimitives.WriteInt32LittleEndian(span[16..], entry.Location.Segment);
            BinaryPrimitives.WriteInt64LittleEndian(span[20..], entry.Location.Offset);
            BinaryPrimitives.WriteInt32LittleEndian(span[28..], entry.Location.Length);
            at += 32;
            at += Utf8Field.Write(output[at..], entry.With);
            at += Utf8Field.Write(output[at..], entry.StanzaId);
        }
        return at;
    }

    // Adds the packed entries to output; false when they do not decode.
    public static bool TryUnpack(ReadOnlySpan<byte> packed, List<LogEntry> output)
    {
        var at = 0;
        while (at < packed.Length)
        {
            if (at + 32 > packed.Length)
                return false;
            var span = packed[at..];
            var location = new LogLocation(BinaryPrimitives.ReadInt32LittleEndian(span[16..]),
                BinaryPrimitives.ReadInt64LittleEndian(span[20..]), BinaryPrimitives.ReadInt32LittleEndian(span[28..]));
            var id = BinaryPrimitives.ReadInt64LittleEndian(span);
            var stamp = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
            at += 32;
            if (!Utf8Field.TryRead(packed, ref at, out var with) || with is null || !Utf8Field.TryRead(packed, ref at, out var stanzaId))
                return false;
            output.Add(new LogEntry(id, stamp, with, stanzaId, location));
        }
        return true;
    }

    // A block as the LiteDB index of earlier versions stored it: its owner and entries.
    public static (string Owner, List<LogEntry> Entries) FromDocument(BsonDocument document)
    {
        var key = document["_id"].AsString;
        var entries = new List<LogEntry>(document["n"].AsInt32);
        if (!TryUnpack(document["e"].AsBinary, entries))
            throw new InvalidDataException($"Archive index block '{key}' is damaged.");
        return (key[..key.LastIndexOf(Separator)], entries);
    }
}
