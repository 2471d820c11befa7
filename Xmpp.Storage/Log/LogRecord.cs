using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;

namespace Xmpp.Storage.Log;

// One record of an archive log as framed on disk, little-endian:
//   u32 body length | u32 CRC-32 of the body | body
//   body = u8 kind | i64 id | i64 stamp ticks | str owner | str with | str stanza id (length -1: none) | i32 n | n bytes
// Strings are an i32 byte count and UTF-8. The CRC lets a reader tell a record cut short or half-written by a crash
// (the tail of the last segment) from a whole one; the length prefix lets it step over records without decoding them.
internal readonly record struct LogRecord(
    LogRecordKind Kind, long Id, long Stamp, string Owner, string With, string? StanzaId, ReadOnlyMemory<byte> Payload)
{
    public const int HeaderLength = 8;

    // A length beyond this in a header is garbage from a torn write, not a record.
    public const int MaxBodyLength = 64 * 1024 * 1024;

    public int EncodedLength =>
        HeaderLength + 1 + 8 + 8 + Utf8Field.Length(Owner) + Utf8Field.Length(With) + Utf8Field.Length(StanzaId) + 4 + Payload.Length;

    public int WriteTo(IBufferWriter<byte> output)
    {
        var length = EncodedLength;
        var span = output.GetSpan(length)[..length];
        var body = span[HeaderLength..];
        body[0] = (byte)Kind;
        BinaryPrimitives.WriteInt64LittleEndian(body[1..], Id);
        BinaryPrimitives.WriteInt64LittleEndian(body[9..], Stamp);
        var at = 17;
        at += Utf8Field.Write(body[at..], Owner);
        at += Utf8Field.Write(body[at..], With);
        at += Utf8Field.Write(body[at..], StanzaId);
        BinaryPrimitives.WriteInt32LittleEndian(body[at..], Payload.Length);
        Payload.Span.CopyTo(body[(at + 4)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)body.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], Crc32.HashToUInt32(body));
        output.Advance(length);
        return length;
    }

    // The body length a header announces, or -1 when it cannot be a record's.
    public static int BodyLength(ReadOnlySpan<byte> header)
    {
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        return length is < 17 + 16 or > MaxBodyLength ? -1 : (int)length;
    }

    // Decodes a whole framed record; false when its checksum or layout does not hold.
    public static bool TryDecode(ReadOnlySpan<byte> framed, out LogRecord record)
    {
        record = default;
        if (framed.Length < HeaderLength || BodyLength(framed) != framed.Length - HeaderLength)
            return false;
        var body = framed[HeaderLength..];
        if (Crc32.HashToUInt32(body) != BinaryPrimitives.ReadUInt32LittleEndian(framed[4..]))
            return false;
        if (body[0] is < (byte)LogRecordKind.Append or > (byte)LogRecordKind.DeleteThrough)
            return false;
        var at = 17;
        if (!Utf8Field.TryRead(body, ref at, out var owner) || owner is null
            || !Utf8Field.TryRead(body, ref at, out var with) || with is null
            || !Utf8Field.TryRead(body, ref at, out var stanzaId)
            || at + 4 > body.Length)
            return false;
        var payloadLength = BinaryPrimitives.ReadInt32LittleEndian(body[at..]);
        if (payloadLength != body.Length - at - 4)
            return false;
        record = new LogRecord((LogRecordKind)body[0], BinaryPrimitives.ReadInt64LittleEndian(body[1..]),
            BinaryPrimitives.ReadInt64LittleEndian(body[9..]), owner, with, stanzaId, body[(at + 4)..].ToArray());
        return true;
    }
}
