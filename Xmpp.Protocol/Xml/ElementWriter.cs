using System.Buffers;
using System.Text;

namespace Xmpp.Protocol.Xml;

/// <summary>Writes elements as UTF-8 straight into an <see cref="IBufferWriter{T}"/>, escaping text and attributes.</summary>
public static class ElementWriter
{
    private static readonly UTF8Encoding Utf8 = new(false, true);

    /// <summary>Writes an element; namespace declarations are emitted only where they differ from <paramref name="defaultNs"/>.</summary>
    public static void Write(IBufferWriter<byte> w, Element e, string defaultNs)
    {
        // Elements in the streams namespace are written with the stream: prefix the header declared;
        // they leave the default namespace in scope unchanged for their children.
        bool streamPrefixed = e.Namespace == Ns.Streams && defaultNs != "\u0000";
        w.Write("<"u8);
        if (streamPrefixed) w.Write("stream:"u8);
        WriteRaw(w, e.Name);
        string childDefault = defaultNs;
        if (!streamPrefixed && e.Namespace != defaultNs)
        {
            w.Write(" xmlns=\""u8);
            WriteEscaped(w, e.Namespace, attribute: true);
            w.Write("\""u8);
            childDefault = e.Namespace;
        }
        if (e.AttributeList is { } attributes)
        {
            foreach (var a in attributes)
            {
                if (a.Name == "xmlns") continue;
                w.Write(" "u8);
                WriteRaw(w, a.Name);
                w.Write("=\""u8);
                WriteEscaped(w, a.Value, attribute: true);
                w.Write("\""u8);
            }
        }
        if (e.OnlyChild is { } child)
        {
            w.Write(">"u8);
            Write(w, child, childDefault);
            WriteEndTag(w, e, streamPrefixed);
            return;
        }
        if (e.OnlyText is { } text)
        {
            w.Write(">"u8);
            WriteEscaped(w, text, attribute: false);
            WriteEndTag(w, e, streamPrefixed);
            return;
        }
        if (e.NodeList is not { Count: > 0 } nodes)
        {
            w.Write("/>"u8);
            return;
        }
        w.Write(">"u8);
        foreach (var n in nodes)
        {
            if (n is Element c) Write(w, c, childDefault);
            else if (n is TextNode t) WriteEscaped(w, t.Value, attribute: false);
        }
        WriteEndTag(w, e, streamPrefixed);
    }

    private static void WriteEndTag(IBufferWriter<byte> w, Element e, bool streamPrefixed)
    {
        w.Write("</"u8);
        if (streamPrefixed) w.Write("stream:"u8);
        WriteRaw(w, e.Name);
        w.Write(">"u8);
    }

    /// <summary>Writes a string as UTF-8 without escaping (names and trusted markup only).</summary>
    public static void WriteRaw(IBufferWriter<byte> w, string s)
    {
        if (s.Length == 0) return;
        int max = Utf8.GetMaxByteCount(s.Length);
        var span = w.GetSpan(max);
        int n = Utf8.GetBytes(s, span);
        w.Advance(n);
    }

    /// <summary>Writes text escaped for element content or (with <paramref name="attribute"/>) a double-quoted attribute.</summary>
    public static void WriteEscaped(IBufferWriter<byte> w, string s, bool attribute)
    {
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            ReadOnlySpan<byte> rep;
            switch (s[i])
            {
                case '<': rep = "&lt;"u8; break;
                case '>': rep = "&gt;"u8; break;
                case '&': rep = "&amp;"u8; break;
                case '"' when attribute: rep = "&quot;"u8; break;
                case '\'' when attribute: rep = "&apos;"u8; break;
                case '\r': rep = "&#13;"u8; break;
                case '\n' when attribute: rep = "&#10;"u8; break;
                case '\t' when attribute: rep = "&#9;"u8; break;
                default: continue;
            }
            if (i > start) WriteRaw(w, s.AsSpan(start, i - start));
            w.Write(rep);
            start = i + 1;
        }
        if (start < s.Length) WriteRaw(w, start == 0 ? s.AsSpan() : s.AsSpan(start));
    }

    private static void WriteRaw(IBufferWriter<byte> w, ReadOnlySpan<char> s)
    {
        int max = Utf8.GetMaxByteCount(s.Length);
        var span = w.GetSpan(max);
        int n = Utf8.GetBytes(s, span);
        w.Advance(n);
    }

    /// <summary>Serializes an element to a UTF-8 byte array with <paramref name="defaultNs"/> in scope.</summary>
    public static byte[] ToBytes(Element e, string defaultNs = Ns.Client)
    {
        // One exact-size array per call: the growing is done in a buffer the thread keeps (archiving serializes every
        // message it stores, and the intermediate arrays were most of the archive's garbage).
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        try
        {
            Write(buffer, e, defaultNs);
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            if (buffer.Capacity > MaxKeptBuffer) t_buffer = null;
            else buffer.ResetWrittenCount();
        }
    }

    private const int MaxKeptBuffer = 64 * 1024;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
}
