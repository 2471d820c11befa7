using System.Text;

namespace Xmpp.Protocol.Sasl;

// The RFC 5802 §7 grammar pieces shared by ScramServer and ScramClient.
internal static class ScramSyntax
{
    // Far above any honest SCRAM message (a few hundred bytes), so it only stops abuse.
    public const int MaxMessageBytes = 4096;

    public const string TlsServerEndPoint = ChannelBinding.TlsServerEndPointName;

    private static readonly UTF8Encoding strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // A message must be valid UTF-8 without control characters; SCRAM has no use for them anywhere.
    public static bool TryDecode(ReadOnlySpan<byte> message, out string text)
    {
        text = "";
        if (message.Length == 0 || message.Length > MaxMessageBytes)
            return false;
        try
        {
            text = strictUtf8.GetString(message);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        foreach (var c in text)
        {
            if (char.IsControl(c))
                return false;
        }
        return true;
    }

    // saslname = 1*(value-safe-char / "=2C" / "=3D"): ',' and '=' travel escaped.
    public static bool TryDecodeSaslName(ReadOnlySpan<char> value, out string name)
    {
        name = "";
        if (value.IsEmpty)
            return false;
        var builder = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == ',')
                return false;
            if (c != '=')
            {
                builder.Append(c);
                continue;
            }
            if (i + 2 >= value.Length)
                return false;
            var escape = value.Slice(i + 1, 2);
            if (escape.SequenceEqual("2C"))
                builder.Append(',');
            else if (escape.SequenceEqual("3D"))
                builder.Append('=');
            else
                return false;
            i += 2;
        }
        name = builder.ToString();
        return true;
    }

    public static string EncodeSaslName(string name) => name.Replace("=", "=3D").Replace(",", "=2C");

    // printable = %x21-2B / %x2D-7E: visible ASCII except ','.
    public static bool IsPrintable(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty)
            return false;
        foreach (var c in value)
        {
            if (c < 0x21 || c > 0x7E || c == ',')
                return false;
        }
        return true;
    }

    // cb-name = 1*(ALPHA / DIGIT / "." / "-")
    public static bool IsCbName(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty)
            return false;
        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '.' || c == '-'))
                return false;
        }
        return true;
    }

    // attr-val = ALPHA "=" value, where value holds no ','.
    public static bool IsAttribute(ReadOnlySpan<char> part, char name) =>
        part.Length >= 2 && part[0] == name && part[1] == '=';

    public static bool IsAnyAttribute(ReadOnlySpan<char> part) =>
        part.Length >= 2 && char.IsAsciiLetter(part[0]) && part[1] == '=';

    // Convert.TryFromBase64String tolerates white space; SCRAM base64 must be canonical and exact.
    public static bool TryDecodeBase64(ReadOnlySpan<char> value, out byte[] bytes)
    {
        bytes = [];
        if (value.Length % 4 != 0)
            return false;
        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '+' || c == '/' || c == '='))
                return false;
        }
        var buffer = new byte[value.Length / 4 * 3];
        if (!Convert.TryFromBase64Chars(value, buffer, out var written))
            return false;
        bytes = buffer.AsSpan(0, written).ToArray();
        return true;
    }

    public static List<Range> SplitCommas(ReadOnlySpan<char> text)
    {
        var parts = new List<Range>();
        foreach (var range in text.Split(','))
            parts.Add(range);
        return parts;
    }
}
