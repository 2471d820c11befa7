using System.Buffers;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using static Xmpp.Tests.Protocol.XmppStreamParserFeeder;

namespace Xmpp.Tests.Protocol;

public class XmppStreamParserTests
{
    // A client stream: declaration, header, stanzas with entities, character references, a 4-byte emoji,
    // prefixes, mixed content, CDATA, empty elements, whitespace keepalives and the end of the stream.
    private const string ClientStream =
        "<?xml version='1.0' encoding='UTF-8'?>\n" +
        "<stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>\n" +
        "<message to='juliet@example.com/balcony' type='chat' id='m1' xml:lang='en'>" +
        "<body>Wherefore art thou, Romeo? &amp; &lt;3 &gt; &quot;x&quot; &apos;y&apos; &#x1F600;&#233;😀</body>" +
        "<active xmlns='http://jabber.org/protocol/chatstates'/></message>" +
        " \n \t " +
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony ☕ 😀 ü</resource></bind></iq>\n" +
        "<presence><show>away</show>" +
        "<status>Mixed <b>bold</b> and <![CDATA[<raw> & ]] stuff]]]]> text</status>" +
        "<x:data xmlns:x='urn:example:x' x:kind=\"a&quot;b\" plain='v&apos;&#60;'><x:item/><x:item></x:item></x:data></presence>" +
        "\n\n<r xmlns='urn:xmpp:sm:3'/>  " +
        "</stream:stream>";

    // A UTF-8 BOM, double quotes, CR LF line ends, attribute whitespace normalization, nested default namespaces,
    // undeclaring the default namespace, a prefix redeclared in a nested scope, and whitespace-only text.
    private static readonly byte[] CrlfStream = Bytes(
        "{EF}{BB}{BF}<stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" version=\"1.0\">\r\n" +
        "<message id=\"a\tb\r\nc\" to=\"😀@example.com\" data=\"&#9;&#10;&#13;\">\r\n" +
        "  <body>line1\r\nline2\rline3\n</body>\r\n" +
        "  <p:x xmlns:p='urn:one'><p:y xmlns:p='urn:two' p:a='1'/><p:z/></p:x>" +
        "<outer xmlns='urn:outer'><inner/><bare xmlns=''><deep/></bare></outer>" +
        "<stream:error><stream:text>in a stanza</stream:text></stream:error>" +
        "</message>\r\n" +
        "</stream:stream>");

    // A server-to-server stream with the dialback prefix on the header and an open stream at the end.
    private const string ServerStream =
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' xmlns:db='jabber:server:dialback' from='a.example' to='b.example' id='s2s-1' version='1.0'>" +
        "<db:result from='a.example' to='b.example'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>" +
        "<message from='romeo@a.example' to='juliet@b.example'><body>Neither, fair saint &#x2764;&#xFE0F;</body></message>";

    private static IEnumerable<TestCaseData> Samples()
    {
        yield return new TestCaseData(Encoding.UTF8.GetBytes(ClientStream)).SetArgDisplayNames("client stream");
        yield return new TestCaseData(CrlfStream).SetArgDisplayNames("CRLF stream with BOM");
        yield return new TestCaseData(Encoding.UTF8.GetBytes(ServerStream)).SetArgDisplayNames("server stream");
    }

    [TestCaseSource(nameof(Samples))]
    public void Splitting_the_input_at_every_byte_position_gives_the_same_items(byte[] input)
    {
        var expected = Whole(input);
        Assert.That(expected, Is.Not.Empty);
        for (int cut = 1; cut < input.Length; cut++)
        {
            Assert.That(InCalls(input, [cut]), Is.EqualTo(expected), $"two calls cut at {cut}");
            Assert.That(AsSegments(input, [cut, input.Length]), Is.EqualTo(expected), $"two segments cut at {cut}");
        }
    }

    [TestCaseSource(nameof(Samples))]
    public void Feeding_one_byte_per_call_gives_the_same_items(byte[] input) =>
        Assert.That(OneBytePerCall(input), Is.EqualTo(Whole(input)));

    [TestCaseSource(nameof(Samples))]
    public void A_multi_segment_sequence_gives_the_same_items(byte[] input)
    {
        var expected = Whole(input);
        Assert.That(AsSegments(input, [1]), Is.EqualTo(expected));
        Assert.That(AsSegments(input, [1, 2, 3, 5, 8, 13]), Is.EqualTo(expected));
        Assert.That(AsSegments(input, [7, 64, 2]), Is.EqualTo(expected));
    }

    [TestCaseSource(nameof(Samples))]
    public void Writing_parsed_elements_and_parsing_them_again_gives_the_same_trees(byte[] input)
    {
        var first = ParseElements(input);
        var rewritten = new ArrayBufferWriter<byte>();
        rewritten.Write(Encoding.UTF8.GetBytes(Header));
        foreach (var e in first) ElementWriter.Write(rewritten, e, Ns.Client);
        rewritten.Write("</stream:stream>"u8);

        var second = ParseElements(rewritten.WrittenSpan.ToArray());
        Assert.That(second.Select(e => e.ToString()), Is.EqualTo(first.Select(e => e.ToString())));
        Assert.That(second.Select(Dump), Is.EqualTo(first.Select(Dump)));
    }

    [Test]
    public void The_client_stream_yields_header_stanzas_and_end_in_order()
    {
        var items = Whole(Encoding.UTF8.GetBytes(ClientStream));
        Assert.That(items.Select(i => i.Kind), Is.EqualTo(new[]
        {
            XmlItemKind.StreamHeader, XmlItemKind.Element, XmlItemKind.Element, XmlItemKind.Element,
            XmlItemKind.Element, XmlItemKind.StreamEnd,
        }));
        Assert.That(items[^1].Xml, Is.Null);
    }

    [Test]
    public void Stream_header_carries_every_attribute_as_written()
    {
        var (header, _) = ParseClientStream();
        Assert.That(header.Name, Is.EqualTo("stream"));
        Assert.That(header.Namespace, Is.EqualTo(Ns.Streams));
        Assert.That(header.Attributes.Select(a => a.Name),
            Is.EqualTo(new[] { "to", "xmlns", "xmlns:stream", "version", "xml:lang" }));
        Assert.That(header.Attr("to"), Is.EqualTo("example.com"));
        Assert.That(header.Attr("xmlns"), Is.EqualTo(Ns.Client));
        Assert.That(header.Attr("xmlns:stream"), Is.EqualTo(Ns.Streams));
        Assert.That(header.Attr("version"), Is.EqualTo("1.0"));
        Assert.That(header.Attr("xml:lang"), Is.EqualTo("en"));
        Assert.That(header.IsEmpty, Is.True);
    }

    [Test]
    public void Stanzas_inherit_the_default_namespace_and_unescape_entities_and_utf8()
    {
        var (_, elements) = ParseClientStream();
        var message = elements[0];
        Assert.That(message.Is("message", Ns.Client), Is.True);
        Assert.That(message.Attributes.Select(a => a.Name), Is.EqualTo(new[] { "to", "type", "id", "xml:lang" }));
        Assert.That(message.Attr("to"), Is.EqualTo("juliet@example.com/balcony"));
        Assert.That(message.ChildText("body", Ns.Client),
            Is.EqualTo("Wherefore art thou, Romeo? & <3 > \"x\" 'y' \U0001F600é😀"));
        var active = message.Child("active", "http://jabber.org/protocol/chatstates");
        Assert.That(active, Is.Not.Null);
        Assert.That(active!.IsEmpty, Is.True);
        Assert.That(active.Attributes, Is.Empty, "the plain xmlns attribute is not kept");

        var iq = elements[1];
        Assert.That(iq.Is("iq", Ns.Client), Is.True);
        Assert.That(iq.Child("bind", Ns.Bind)?.ChildText("resource", Ns.Bind), Is.EqualTo("balcony ☕ 😀 ü"));
    }

    [Test]
    public void Mixed_content_keeps_its_order_and_cdata_becomes_text()
    {
        var (_, elements) = ParseClientStream();
        var status = elements[2].Child("status", Ns.Client)!;
        Assert.That(status.Nodes, Has.Count.EqualTo(3));
        Assert.That(((TextNode)status.Nodes[0]).Value, Is.EqualTo("Mixed "));
        Assert.That(((Element)status.Nodes[1]).Is("b", Ns.Client), Is.True);
        Assert.That(((Element)status.Nodes[1]).Text, Is.EqualTo("bold"));
        Assert.That(((TextNode)status.Nodes[2]).Value, Is.EqualTo(" and <raw> & ]] stuff]] text"));
    }

    [Test]
    public void Prefixed_elements_resolve_and_declarations_and_prefixed_attributes_are_kept()
    {
        var (_, elements) = ParseClientStream();
        var data = elements[2].Child("data", "urn:example:x")!;
        Assert.That(data, Is.Not.Null);
        Assert.That(data.Attributes, Is.EqualTo(new[]
        {
            new XmlAttribute("xmlns:x", "urn:example:x"),
            new XmlAttribute("x:kind", "a\"b"),
            new XmlAttribute("plain", "v'<"),
        }));
        var items = data.Elements("item", "urn:example:x").ToList();
        Assert.That(items, Has.Count.EqualTo(2));
        Assert.That(items.All(i => i.IsEmpty), Is.True, "<x:item/> and <x:item></x:item> are both empty");
        Assert.That(elements[3].Is("r", "urn:xmpp:sm:3"), Is.True);
        Assert.That(elements[3].ToString(), Is.EqualTo("<r xmlns=\"urn:xmpp:sm:3\"/>"));
    }

    [Test]
    public void Line_ends_are_normalized_and_nested_scopes_resolve()
    {
        var elements = ParseElements(CrlfStream);
        Assert.That(elements, Has.Count.EqualTo(1));
        var message = elements[0];
        Assert.That(message.Attr("id"), Is.EqualTo("a b c"), "literal tab and CR LF in an attribute become spaces");
        Assert.That(message.Attr("data"), Is.EqualTo("\t\n\r"), "character references are not normalized");
        Assert.That(message.Attr("to"), Is.EqualTo("😀@example.com"));
        Assert.That(message.ChildText("body", Ns.Client), Is.EqualTo("line1\nline2\nline3\n"));
        Assert.That(message.Nodes[0], Is.TypeOf<TextNode>(), "whitespace between children is kept");
        Assert.That(((TextNode)message.Nodes[0]).Value, Is.EqualTo("\n  "));

        var x = message.Child("x", "urn:one")!;
        Assert.That(x.Child("y", "urn:two")?.Attr("p:a"), Is.EqualTo("1"));
        Assert.That(x.Child("z", "urn:one"), Is.Not.Null, "the inner redeclaration of p ends with its element");

        var outer = message.Child("outer", "urn:outer")!;
        Assert.That(outer.Child("inner", "urn:outer"), Is.Not.Null);
        Assert.That(outer.Child("bare", "")?.Child("deep", ""), Is.Not.Null);
        Assert.That(message.Child("error", Ns.Streams)?.ChildText("text", Ns.Streams), Is.EqualTo("in a stanza"));
    }

    [Test]
    public void A_server_stream_resolves_the_dialback_prefix_from_the_header()
    {
        var items = Whole(Encoding.UTF8.GetBytes(ServerStream));
        Assert.That(items.Select(i => i.Kind),
            Is.EqualTo(new[] { XmlItemKind.StreamHeader, XmlItemKind.Element, XmlItemKind.Element }));
        var elements = ParseElements(Encoding.UTF8.GetBytes(ServerStream));
        Assert.That(elements[0].Is("result", "jabber:server:dialback"), Is.True);
        Assert.That(elements[1].Is("message", Ns.Server), Is.True);
        Assert.That(elements[1].ChildText("body", Ns.Server), Is.EqualTo("Neither, fair saint ❤️"));
    }

    [Test]
    public void Items_are_returned_one_at_a_time_and_consumed_points_just_past_each()
    {
        var bytes = Encoding.UTF8.GetBytes(Header + "<a/><b>x</b> <c>par");
        var parser = new XmppStreamParser();
        var buffer = new ReadOnlySequence<byte>(bytes);
        var kinds = new List<XmlItemKind>();
        var remaining = new List<long>();
        while (true)
        {
            var kind = parser.Parse(buffer, out var consumed, out _);
            buffer = buffer.Slice(consumed);
            kinds.Add(kind);
            remaining.Add(buffer.Length);
            if (kind == XmlItemKind.NeedMoreData) break;
        }
        Assert.That(kinds, Is.EqualTo(new[]
        {
            XmlItemKind.StreamHeader, XmlItemKind.Element, XmlItemKind.Element, XmlItemKind.NeedMoreData,
        }));
        Assert.That(remaining, Is.EqualTo(new long[] { "<a/><b>x</b> <c>par".Length, "<b>x</b> <c>par".Length, " <c>par".Length, 0 }));
        Assert.That(parser.StanzaBytesSoFar, Is.EqualTo("<c>par".Length));

        var rest = new ReadOnlySequence<byte>("tial</c>"u8.ToArray());
        Assert.That(parser.Parse(rest, out _, out var item), Is.EqualTo(XmlItemKind.Element));
        Assert.That(item!.Text, Is.EqualTo("partial"));
        Assert.That(parser.StanzaBytesSoFar, Is.Zero);
    }

    [Test]
    public void Whitespace_keepalives_alone_produce_nothing()
    {
        var parser = new XmppStreamParser();
        var items = new List<ParsedItem>();
        Feed(parser, new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(Header)), items);
        for (int n = 0; n < 3; n++) Feed(parser, new ReadOnlySequence<byte>(" \n\t\r "u8.ToArray()), items);
        Assert.That(items.Select(i => i.Kind), Is.EqualTo(new[] { XmlItemKind.StreamHeader }));
        Assert.That(parser.StanzaBytesSoFar, Is.Zero);
    }

    [Test]
    public void Reset_accepts_a_new_declaration_and_header()
    {
        var parser = new XmppStreamParser();
        var items = new List<ParsedItem>();
        Feed(parser, new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(
            "<?xml version='1.0'?>" + Header + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><partial")), items);
        Assert.That(items.Select(i => i.Kind), Is.EqualTo(new[] { XmlItemKind.StreamHeader, XmlItemKind.Element }));

        parser.Reset();
        Assert.That(parser.StanzaBytesSoFar, Is.Zero);
        items.Clear();
        Feed(parser, new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(
            "<?xml version='1.0' encoding='utf-8' standalone='yes'?><stream:stream xmlns='jabber:client' " +
            "xmlns:stream='http://etherx.jabber.org/streams' id='second'><presence/></stream:stream>")), items);
        Assert.That(items.Select(i => i.Kind), Is.EqualTo(new[]
        {
            XmlItemKind.StreamHeader, XmlItemKind.Element, XmlItemKind.StreamEnd,
        }));
        Assert.That(items[0].Tree, Does.Contain("id=second;"));
        Assert.That(items[1].Xml, Is.EqualTo("<presence xmlns=\"jabber:client\"/>"));
    }

    [Test]
    public void Repeated_names_are_interned()
    {
        var elements = ParseElements(Encoding.UTF8.GetBytes(Header +
            "<message id='1'><custom-thing xmlns='urn:custom' custom-attr='1'/></message>" +
            "<message id='2'><custom-thing xmlns='urn:custom' custom-attr='2'/></message>"));
        Assert.That(elements[0].Name, Is.SameAs(elements[1].Name));
        Assert.That(elements[0].Attributes[0].Name, Is.SameAs(elements[1].Attributes[0].Name));
        var a = elements[0].FirstElement!;
        var b = elements[1].FirstElement!;
        Assert.That(a.Name, Is.SameAs(b.Name), "names outside the common table are interned per parser");
        Assert.That(a.Attributes[0].Name, Is.SameAs(b.Attributes[0].Name));
        Assert.That(elements[0].Name, Is.SameAs(NameTable.Common.GetOrAdd("message"u8)));
    }

    private static (Element Header, List<Element> Elements) ParseClientStream()
    {
        var parser = new XmppStreamParser();
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(ClientStream));
        Element? header = null;
        var elements = new List<Element>();
        while (true)
        {
            var kind = parser.Parse(buffer, out var consumed, out var item);
            buffer = buffer.Slice(consumed);
            if (kind == XmlItemKind.NeedMoreData) break;
            if (kind == XmlItemKind.StreamHeader) header = item;
            else if (kind == XmlItemKind.Element) elements.Add(item!);
        }
        return (header!, elements);
    }

    private static List<Element> ParseElements(byte[] input)
    {
        var parser = new XmppStreamParser();
        var buffer = new ReadOnlySequence<byte>(input);
        var elements = new List<Element>();
        while (true)
        {
            var kind = parser.Parse(buffer, out var consumed, out var item);
            buffer = buffer.Slice(consumed);
            if (kind == XmlItemKind.NeedMoreData) break;
            if (kind == XmlItemKind.Element) elements.Add(item!);
        }
        return elements;
    }
}
