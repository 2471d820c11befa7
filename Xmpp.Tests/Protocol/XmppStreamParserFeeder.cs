using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Protocol;

// One item the parser produced, as its serialization and as a dump that also shows node boundaries.
internal sealed record ParsedItem(XmlItemKind Kind, string? Xml, string? Tree);

// Feeds bytes to an XmppStreamParser the way the server's read loop does, in different fragmentations.
internal static partial class XmppStreamParserFeeder
{
    public const string Header =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

    // A header with only the two namespace declarations, for tests of small attribute limits.
    public const string ShortHeader =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    // UTF-8 of the text, with {XX} standing for one raw byte (to write invalid UTF-8), {H} for the standard header
    // and {S} for the short one.
    public static byte[] Bytes(string text)
    {
        var output = new List<byte>();
        int last = 0;
        foreach (Match m in RawByte().Matches(text))
        {
            output.AddRange(Encoding.UTF8.GetBytes(text[last..m.Index].Replace("{H}", Header).Replace("{S}", ShortHeader)));
            output.Add(Convert.ToByte(m.Groups[1].Value, 16));
            last = m.Index + m.Length;
        }
        output.AddRange(Encoding.UTF8.GetBytes(text[last..].Replace("{H}", Header).Replace("{S}", ShortHeader)));
        return output.ToArray();
    }

    [GeneratedRegex(@"\{([0-9A-F]{2})\}")]
    private static partial Regex RawByte();

    // Runs the caller loop of the public contract over one buffer and collects the items.
    public static void Feed(XmppStreamParser parser, ReadOnlySequence<byte> buffer, List<ParsedItem> into)
    {
        while (true)
        {
            var kind = parser.Parse(buffer, out var consumed, out var item);
            buffer = buffer.Slice(consumed);
            if (kind == XmlItemKind.NeedMoreData)
            {
                Assert.That(buffer.Length, Is.Zero, "NeedMoreData must take every byte");
                return;
            }
            into.Add(new ParsedItem(kind, item?.ToString(), item is null ? null : Dump(item)));
        }
    }

    public static List<ParsedItem> Whole(byte[] input, ParserLimits? limits = null)
    {
        var items = new List<ParsedItem>();
        Feed(new XmppStreamParser(limits), new ReadOnlySequence<byte>(input), items);
        return items;
    }

    // Feeds the input as separate calls, cut at the given offsets.
    public static List<ParsedItem> InCalls(byte[] input, IEnumerable<int> cuts, ParserLimits? limits = null)
    {
        var parser = new XmppStreamParser(limits);
        var items = new List<ParsedItem>();
        int start = 0;
        foreach (int cut in cuts.Append(input.Length))
        {
            Feed(parser, new ReadOnlySequence<byte>(input, start, cut - start), items);
            start = cut;
        }
        return items;
    }

    public static List<ParsedItem> OneBytePerCall(byte[] input, ParserLimits? limits = null) =>
        InCalls(input, Enumerable.Range(1, Math.Max(0, input.Length - 1)), limits);

    // Feeds the input in one call as a sequence of segments of the given sizes (repeated until the input ends).
    public static List<ParsedItem> AsSegments(byte[] input, int[] sizes, ParserLimits? limits = null)
    {
        var items = new List<ParsedItem>();
        Feed(new XmppStreamParser(limits), Segmented(input, sizes), items);
        return items;
    }

    public static ReadOnlySequence<byte> Segmented(byte[] input, int[] sizes)
    {
        Segment? first = null, last = null;
        int offset = 0, n = 0;
        while (offset < input.Length)
        {
            int size = Math.Min(sizes[n++ % sizes.Length], input.Length - offset);
            // Copy each piece so that no segment shares memory with its neighbours.
            var memory = new ReadOnlyMemory<byte>(input.AsSpan(offset, size).ToArray());
            if (last is null) first = last = new Segment(memory, 0);
            else last = last.Append(memory);
            offset += size;
        }
        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    // A structural dump: every node on its own, attributes in order, text quoted.
    public static string Dump(Element e)
    {
        var sb = new StringBuilder();
        Dump(e, sb);
        return sb.ToString();
    }

    private static void Dump(Element e, StringBuilder sb)
    {
        sb.Append('{').Append(e.Namespace).Append('}').Append(e.Name).Append('[');
        foreach (var a in e.Attributes) sb.Append(a.Name).Append('=').Append(a.Value).Append(';');
        sb.Append("](");
        foreach (var n in e.Nodes)
        {
            if (n is Element c) Dump(c, sb);
            else if (n is TextNode t) sb.Append('"').Append(t.Value).Append('"');
            sb.Append(',');
        }
        sb.Append(')');
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
