using System.Buffers.Binary;
using System.Text;

namespace Xmpp.Storage.Log;

// A string as the archive log and its index blocks store it: i32 byte count (-1 for null), then UTF-8.
internal static class Utf8Field
{
    private static readonly UTF8Encoding Utf8 = new(false, true);

    public static int Length(string? value) => 4 + (value is null ? 0 : Utf8.GetByteCount(value));

    public static int Write(Span<byte> output, string? value)
    {
        if (value is null)
        {
            BinaryPrimitives.WriteInt32LittleEndian(output, -1);
            return 4;
        }
        var written = Utf8.GetBytes(value, output[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(output, written);
        return 4 + written;
    }

    // False when the field runs past the end of input.
    public static bool TryRead(ReadOnlySpan<byte> input, ref int at, out string? value)
    {
        value = null;
        if (at + 4 > input.Length)
            return false;
        var length = BinaryPrimitives.ReadInt32LittleEndian(input[at..]);
        at += 4;
        if (length == -1)
            return true;
        if (length < 0 || at + length > input.Length)
            return false;
        value = Utf8.GetString(input.Slice(at, length));
        at += length;
        return true;
    }
}
