using System.Buffers;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Http.WebClients;

namespace Xmpp.Fuzz;

/// The XML stream parser (Xmpp.Protocol/Xml/XmppStreamParser*.cs). It may only throw XmppStreamException, must give the
/// same items and the same error however the bytes are split, must stay within its allocation bound, and every element
/// it returns must survive serialization and parsing again unchanged.
public static class XmlHarness
{
    // Small limits, so that the fuzzer reaches every limit's edge with small inputs.
    public static readonly ParserLimits Limits = new() { MaxStanzaBytes = 8 * 1024, MaxDepth = 12, MaxAttributes = 10, MaxNameLength = 40 };

    public static readonly byte[] Context = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"u8.ToArray();

    public static void Run(byte[] data)
    {
        var whole = FuzzAssert.WithinAllocationBound(data.Length, () => ParseAll(data, data.Length));
        // The split depends on the input, so the fuzzer explores fragmentations too.
        int chunk = data.Length == 0 ? 1 : data[0] % 13 + 1;
        var split = ParseAll(data, chunk);
        FuzzAssert.True(whole.Items.SequenceEqual(split.Items), $"different items when split into {chunk}-byte chunks");
        FuzzAssert.True(whole.Error == split.Error, $"error {whole.Error ?? "none"} whole but {split.Error ?? "none"} split into {chunk}-byte chunks");
        foreach (var element in whole.Elements) RoundTrip(element);
    }

    // The conditions the parser and the framed-message parser raise (RFC 6120 §4.9.3).
    private static readonly HashSet<string> ParserConditions =
    [
        StreamErrors.BadFormat, StreamErrors.BadNamespacePrefix, StreamErrors.InvalidNamespace, StreamErrors.NotWellFormed,
        StreamErrors.PolicyViolation, StreamErrors.RestrictedXml, StreamErrors.UnsupportedEncoding,
    ];

    public static bool IsParserCondition(string condition) => ParserConditions.Contains(condition);

    /// The elements of one client message as the web transports read them (MessageParser), or null when the parser
    /// refused it with one of its documented stream errors; any other error fails the run.
    public static List<Element>? ClientElements(byte[] data)
    {
        try { return new MessageParser(Limits).Parse(data); }
        catch (XmppStreamException e)
        {
            FuzzAssert.True(IsParserCondition(e.Condition), $"unexpected stream error condition {e.Condition}");
            return null;
        }
    }

    public sealed record Outcome(List<string> Items, List<Element> Elements, string? Error);

    public static Outcome ParseAll(byte[] data, int chunk, ParserLimits? limits = null)
    {
        var parser = new XmppStreamParser(limits ?? Limits);
        var items = new List<string>();
        var elements = new List<Element>();
        try
        {
            for (int offset = 0; offset < data.Length; offset += chunk)
            {
                var buffer = new ReadOnlySequence<byte>(data, offset, Math.Min(chunk, data.Length - offset));
                while (true)
                {
                    var kind = parser.Parse(buffer, out var consumed, out var item);
                    if (kind != XmlItemKind.NeedMoreData && chunk >= data.Length)
                    {
                        // Read in one piece, an item's bytes are known: from its '<' (after any whitespace) to its end.
                        var itemBytes = buffer.Slice(0, consumed).ToArray().AsSpan().TrimStart(" \t\r\n"u8).Length;
                        FuzzAssert.True(itemBytes <= parser.Limits.MaxStanzaBytes, $"a {itemBytes}-byte item passed the {parser.Limits.MaxStanzaBytes}-byte limit");
                    }
                    if (item is not null) WithinLimits(item, parser.Limits, 1);
                    buffer = buffer.Slice(consumed);
                    if (kind == XmlItemKind.NeedMoreData) break;
                    FuzzAssert.True((item is null) == (kind == XmlItemKind.StreamEnd), $"{kind} came with item {item}");
                    items.Add(kind + " " + (item is null ? "" : Describe(item)));
                    if (kind == XmlItemKind.Element) elements.Add(item!);
                }
            }
        }
        catch (XmppStreamException e)
        {
            FuzzAssert.True(ParserConditions.Contains(e.Condition), $"unexpected stream error condition {e.Condition}");
            return new Outcome(items, elements, e.Condition);
        }
        return new Outcome(items, elements, null);
    }

    // ParserLimits: depth (a top-level stanza is at depth 1), attributes per element, name lengths in UTF-8 bytes.
    private static void WithinLimits(Element e, ParserLimits limits, int depth)
    {
        FuzzAssert.True(depth <= limits.MaxDepth, $"an element at depth {depth} passed the limit of {limits.MaxDepth}");
        FuzzAssert.True(e.Attributes.Count <= limits.MaxAttributes, $"{e.Attributes.Count} attributes passed the limit of {limits.MaxAttributes}");
        FuzzAssert.True(System.Text.Encoding.UTF8.GetByteCount(e.Name) <= limits.MaxNameLength, "an element name passed the length limit");
        foreach (var a in e.Attributes)
            FuzzAssert.True(System.Text.Encoding.UTF8.GetByteCount(a.Name) <= limits.MaxNameLength, "an attribute name passed the length limit");
        foreach (var child in e.Elements()) WithinLimits(child, limits, depth + 1);
    }

    // Names, namespaces, attributes and text, in a form that does not depend on how they were written.
    private static string Describe(Element e)
    {
        var w = new ArrayBufferWriter<byte>();
        // A header is an element left open: describe its own name and attributes only.
        if (e.Namespace == Ns.Streams && e.Name == "stream")
            return $"{{{e.Namespace}}}{e.Name} " + string.Join(" ", e.Attributes.Select(a => $"{a.Name}={a.Value}"));
        ElementWriter.Write(w, e, "\u0001");
        return System.Text.Encoding.UTF8.GetString(w.WrittenSpan);
    }

    private static void RoundTrip(Element e)
    {
        var bytes = ElementWriter.ToBytes(e, Ns.Client);
        var again = ParseAll([.. Context, .. bytes], int.MaxValue, Limits with { MaxStanzaBytes = 16 * Limits.MaxStanzaBytes + 1024 });
        FuzzAssert.True(again.Error is null && again.Elements.Count == 1,
            $"serialized element does not parse again ({again.Error}): {System.Text.Encoding.UTF8.GetString(bytes)}");
        var rewritten = ElementWriter.ToBytes(again.Elements[0], Ns.Client);
        FuzzAssert.True(bytes.AsSpan().SequenceEqual(rewritten), "element changed on a round trip through the writer and the parser");
    }
}
