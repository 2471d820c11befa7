using System.Buffers;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Cluster;

/// What nodes send each other through Redis is XML written and read by the project's own serializer and parser: a
/// batch is a run of top-level elements in the cluster namespace, read as if they followed a stream header, each
/// under the normal parser limits (one stanza's worth plus the frame around it).
internal static class ClusterXml
{
    private static readonly byte[] Header =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"u8.ToArray();

    internal static readonly ParserLimits Limits = ParserLimits.Default with
    {
        MaxStanzaBytes = ParserLimits.Default.MaxStanzaBytes + 4096,
        MaxDepth = ParserLimits.Default.MaxDepth + 1,
    };

    /// Writes an element whose attributes are given as pairs, with one optional child written whole.
    internal static void Write(IBufferWriter<byte> w, string name, ReadOnlySpan<(string Name, string? Value)> attributes, Element? child)
    {
        w.Write("<"u8);
        ElementWriter.WriteRaw(w, name);
        w.Write(" xmlns='"u8);
        ElementWriter.WriteRaw(w, Ns.Cluster);
        w.Write("'"u8);
        foreach (var (n, v) in attributes)
        {
            if (v is null) continue;
            w.Write(" "u8);
            ElementWriter.WriteRaw(w, n);
            w.Write("='"u8);
            ElementWriter.WriteEscaped(w, v, attribute: true);
            w.Write("'"u8);
        }
        if (child is null)
        {
            w.Write("/>"u8);
            return;
        }
        w.Write(">"u8);
        ElementWriter.Write(w, child, Ns.Cluster);
        w.Write("</"u8);
        ElementWriter.WriteRaw(w, name);
        w.Write(">"u8);
    }

    /// Reads every element of a batch with a parser the caller reuses (one reader per channel); a malformed batch
    /// throws XmppStreamException after the elements before the fault were returned.
    internal static List<Element> ReadAll(XmppStreamParser parser, ReadOnlyMemory<byte> batch)
    {
        parser.Reset();
        if (parser.Parse(new ReadOnlySequence<byte>(Header), out _, out _) != XmlItemKind.StreamHeader)
            throw new InvalidOperationException("cluster batch header did not parse");
        var items = new List<Element>();
        var rest = new ReadOnlySequence<byte>(batch);
        while (!rest.IsEmpty)
        {
            var kind = parser.Parse(rest, out var consumed, out var element);
            if (kind != XmlItemKind.Element || element is null)
            {
                if (kind == XmlItemKind.NeedMoreData) throw new XmppStreamException(StreamErrors.BadFormat, "cluster batch ends inside an element");
                break;
            }
            items.Add(element);
            rest = rest.Slice(consumed);
        }
        return items;
    }
}
