using System.Text;

namespace Xmpp.Storage.Postgres;

// The XEP-0359 origin-id of an archived message, read from its payload as the server serializes it (ElementWriter:
// the namespace first, double quotes, the five predefined entities), for the archive tables' origin_id column. The
// first origin-id element counts: a message carries its own before any it embeds.
internal static class OriginIds
{
    private static ReadOnlySpan<byte> Open => "<origin-id xmlns=\"urn:xmpp:sid:0\""u8;
    private static ReadOnlySpan<byte> IdAttribute => " id=\""u8;

    public static string? Find(ReadOnlySpan<byte> payload)
    {
        var at = payload.IndexOf(Open);
        if (at < 0) return null;
        var tag = payload[(at + Open.Length)..];
        var end = tag.IndexOf((byte)'>');
        if (end < 0) return null;
        tag = tag[..end];
        var id = tag.IndexOf(IdAttribute);
        if (id < 0) return null;
        var value = tag[(id + IdAttribute.Length)..];
        var close = value.IndexOf((byte)'"');
        if (close <= 0) return null;
        var text = Encoding.UTF8.GetString(value[..close]);
        // PostgreSQL text cannot hold U+0000 (nor can XML); anything else is kept.
        if (text.Contains('\0')) return null;
        return text.Contains('&')
            ? text.Replace("&lt;", "<").Replace("&gt;", ">").Replace("&quot;", "\"").Replace("&apos;", "'").Replace("&amp;", "&")
            : text;
    }
}
