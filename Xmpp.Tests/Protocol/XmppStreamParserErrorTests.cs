using System.Buffers;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using static Xmpp.Tests.Protocol.XmppStreamParserFeeder;

namespace Xmpp.Tests.Protocol;

public class XmppStreamParserErrorTests
{
    // {H} is a valid client stream header; {XX} is one raw byte.
    [TestCase("<?xml version='1.0' encoding='ISO-8859-1'?>{H}", StreamErrors.UnsupportedEncoding, TestName = "Declaration with a non-UTF-8 encoding")]
    [TestCase("<?xml version='1.0' encoding='UTF-16'?>{H}", StreamErrors.UnsupportedEncoding, TestName = "Declaration with UTF-16")]
    [TestCase("<stream:stream xmlns='jabber:client' xmlns:stream='urn:not-streams'>", StreamErrors.InvalidNamespace, TestName = "Header in the wrong namespace")]
    [TestCase("<stream xmlns='jabber:client'>", StreamErrors.InvalidNamespace, TestName = "Unprefixed header in the content namespace")]
    [TestCase("<stream:stream xmlns='jabber:client'>", StreamErrors.BadNamespacePrefix, TestName = "Header with an undeclared stream prefix")]
    [TestCase("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>", StreamErrors.BadFormat, TestName = "First element is not stream")]
    [TestCase("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", StreamErrors.BadFormat, TestName = "Self-closed header")]
    [TestCase("{H}<foo:message/>", StreamErrors.BadNamespacePrefix, TestName = "Undeclared element prefix")]
    [TestCase("{H}<message foo:bar='1'/>", StreamErrors.BadNamespacePrefix, TestName = "Undeclared attribute prefix")]
    [TestCase("{H}<message><a xmlns:p='urn:p'/><p:b/></message>", StreamErrors.BadNamespacePrefix, TestName = "Prefix used outside its scope")]
    [TestCase("{H}<message xmlns:xmlns='urn:x'/>", StreamErrors.BadNamespacePrefix, TestName = "Declaring the xmlns prefix")]
    [TestCase("{H}<message><!-- hi --></message>", StreamErrors.RestrictedXml, TestName = "Comment in a stanza")]
    [TestCase("<!-- hi -->{H}", StreamErrors.RestrictedXml, TestName = "Comment before the header")]
    [TestCase("{H}<!-- hi -->", StreamErrors.RestrictedXml, TestName = "Comment between stanzas")]
    [TestCase("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>{H}", StreamErrors.RestrictedXml, TestName = "DTD before the header")]
    [TestCase("{H}<!ENTITY x 'y'>", StreamErrors.RestrictedXml, TestName = "Entity declaration")]
    [TestCase("{H}<message><?php echo 1?></message>", StreamErrors.RestrictedXml, TestName = "Processing instruction in a stanza")]
    [TestCase("<?xml-stylesheet href='a'?>{H}", StreamErrors.RestrictedXml, TestName = "Processing instruction before the header")]
    [TestCase("<?xml version='1.0'?><?xml version='1.0'?>{H}", StreamErrors.RestrictedXml, TestName = "Second XML declaration")]
    [TestCase("{H}<?xml version='1.0'?>", StreamErrors.RestrictedXml, TestName = "XML declaration after the header")]
    [TestCase("{H}<message><body>&nbsp;</body></message>", StreamErrors.RestrictedXml, TestName = "Undefined entity in text")]
    [TestCase("{H}<message to='&ent;'/>", StreamErrors.RestrictedXml, TestName = "Undefined entity in an attribute")]
    [TestCase("{H}<message><body>&averyveryverylongentityname;</body></message>", StreamErrors.RestrictedXml, TestName = "Long undefined entity")]
    [TestCase("{H}<message><body>{FF}</body></message>", StreamErrors.NotWellFormed, TestName = "Invalid UTF-8 byte")]
    [TestCase("{H}<message><body>{C3}</body></message>", StreamErrors.NotWellFormed, TestName = "Truncated UTF-8 sequence")]
    [TestCase("{H}<message><body>{F0}{9F}{98}</body></message>", StreamErrors.NotWellFormed, TestName = "Truncated 4-byte UTF-8 sequence")]
    [TestCase("{H}<message><body>{C0}{AF}</body></message>", StreamErrors.NotWellFormed, TestName = "Overlong UTF-8")]
    [TestCase("{H}<message><body>{ED}{A0}{80}</body></message>", StreamErrors.NotWellFormed, TestName = "UTF-8 encoded surrogate")]
    [TestCase("{H}<message to='{FE}'/>", StreamErrors.NotWellFormed, TestName = "Invalid UTF-8 in an attribute")]
    [TestCase("{H}<messag{C3}/>", StreamErrors.NotWellFormed, TestName = "Invalid UTF-8 in a name")]
    [TestCase("{H}<message><body>{EF}{BF}{BF}</body></message>", StreamErrors.NotWellFormed, TestName = "Non-character U+FFFF")]
    [TestCase("{H}<message><body>{01}</body></message>", StreamErrors.NotWellFormed, TestName = "Control character in text")]
    [TestCase("{H}<message to='a{00}'/>", StreamErrors.NotWellFormed, TestName = "NUL in an attribute")]
    [TestCase("{H}<message><body>&#0;</body></message>", StreamErrors.NotWellFormed, TestName = "Character reference to NUL")]
    [TestCase("{H}<message><body>&#x1B;</body></message>", StreamErrors.NotWellFormed, TestName = "Character reference to ESC")]
    [TestCase("{H}<message><body>&#xD800;</body></message>", StreamErrors.NotWellFormed, TestName = "Character reference to a surrogate")]
    [TestCase("{H}<message><body>&#x110000;</body></message>", StreamErrors.NotWellFormed, TestName = "Character reference beyond Unicode")]
    [TestCase("{H}<message><body>&#;</body></message>", StreamErrors.NotWellFormed, TestName = "Empty character reference")]
    [TestCase("{H}<message><body>&#x12g;</body></message>", StreamErrors.NotWellFormed, TestName = "Bad hex digit in a character reference")]
    [TestCase("{H}<message><body>& x</body></message>", StreamErrors.NotWellFormed, TestName = "Bare ampersand")]
    [TestCase("{H}<message><body>&amp x</body></message>", StreamErrors.NotWellFormed, TestName = "Unterminated entity")]
    [TestCase("{H}<message><body></message>", StreamErrors.NotWellFormed, TestName = "Mismatched end tag")]
    [TestCase("{H}<p:a xmlns:p='urn:x' xmlns:q='urn:x'></q:a>", StreamErrors.NotWellFormed, TestName = "End tag with another prefix")]
    [TestCase("{H}</message>", StreamErrors.NotWellFormed, TestName = "End tag without a start tag")]
    [TestCase("{H}</stream:foo>", StreamErrors.NotWellFormed, TestName = "Wrong stream end tag")]
    [TestCase("{H}</stream:stream><message/>", StreamErrors.NotWellFormed, TestName = "Element after the end of the stream")]
    [TestCase("{H}<message id='1' id='2'/>", StreamErrors.NotWellFormed, TestName = "Duplicate attribute")]
    [TestCase("{H}<message xmlns:a='urn:x' xmlns:b='urn:x' a:t='1' b:t='2'/>", StreamErrors.NotWellFormed, TestName = "Duplicate expanded attribute name")]
    [TestCase("{H}<message to='a<b'/>", StreamErrors.NotWellFormed, TestName = "Less-than in an attribute value")]
    [TestCase("{H}<message to=unquoted/>", StreamErrors.NotWellFormed, TestName = "Unquoted attribute value")]
    [TestCase("{H}<message id='1'to='2'/>", StreamErrors.NotWellFormed, TestName = "Attributes without whitespace between")]
    [TestCase("{H}<message id/>", StreamErrors.NotWellFormed, TestName = "Attribute without a value")]
    [TestCase("{H}<message/ >", StreamErrors.NotWellFormed, TestName = "Space inside an empty-element close")]
    [TestCase("{H}<1message/>", StreamErrors.NotWellFormed, TestName = "Name starting with a digit")]
    [TestCase("{H}< message/>", StreamErrors.NotWellFormed, TestName = "Space after the less-than")]
    [TestCase("{H}<a:b:c xmlns:a='urn:x'/>", StreamErrors.NotWellFormed, TestName = "Name with two colons")]
    [TestCase("{H}<message a:='1'/>", StreamErrors.NotWellFormed, TestName = "Attribute name ending with a colon")]
    [TestCase("{H}<message xmlns:p=''/>", StreamErrors.NotWellFormed, TestName = "Undeclaring a prefix")]
    [TestCase("{H}hello", StreamErrors.NotWellFormed, TestName = "Text between stanzas")]
    [TestCase("{H}&amp;", StreamErrors.NotWellFormed, TestName = "Reference between stanzas")]
    [TestCase("hello{H}", StreamErrors.NotWellFormed, TestName = "Text before the header")]
    [TestCase("{H}<message>]]></message>", StreamErrors.NotWellFormed, TestName = "CDATA terminator in text")]
    [TestCase("{H}<message><![CDATX[x]]></message>", StreamErrors.NotWellFormed, TestName = "Malformed CDATA start")]
    [TestCase("{H}<![CDATA[x]]>", StreamErrors.NotWellFormed, TestName = "CDATA between stanzas")]
    [TestCase("<?xml encoding='UTF-8'?>{H}", StreamErrors.NotWellFormed, TestName = "Declaration without a version")]
    [TestCase("<?xml version='1.0' bogus='x'?>{H}", StreamErrors.NotWellFormed, TestName = "Declaration with an unknown pseudo-attribute")]
    [TestCase("{EF}{BB}{00}{H}", StreamErrors.NotWellFormed, TestName = "Broken byte order mark")]
    public void Malformed_input_fails_with_its_stream_error(string input, string condition)
    {
        var bytes = Bytes(input);
        Assert.That(() => Whole(bytes), Throws.TypeOf<XmppStreamException>().With.Property("Condition").EqualTo(condition), "whole");
        Assert.That(() => OneBytePerCall(bytes), Throws.TypeOf<XmppStreamException>().With.Property("Condition").EqualTo(condition), "one byte per call");
        for (int cut = 1; cut < bytes.Length; cut++)
        {
            Assert.That(() => InCalls(bytes, [cut]),
                Throws.TypeOf<XmppStreamException>().With.Property("Condition").EqualTo(condition), $"cut at {cut}");
        }
    }

    [Test]
    public void Oversized_stanza_fails_with_policy_violation_before_it_is_complete()
    {
        var limits = new ParserLimits { MaxStanzaBytes = 200 };
        var parser = new XmppStreamParser(limits);
        var items = new List<ParsedItem>();
        Feed(parser, new ReadOnlySequence<byte>(Bytes("{H}")), items);

        var stanza = Encoding.UTF8.GetBytes("<message><body>" + new string('a', 10_000) + "</body></message>");
        int fed = 0;
        var error = Assert.Throws<XmppStreamException>(() =>
        {
            for (; fed < stanza.Length; fed++)
                Feed(parser, new ReadOnlySequence<byte>(stanza, fed, 1), items);
        });
        Assert.That(error!.Condition, Is.EqualTo(StreamErrors.PolicyViolation));
        Assert.That(fed, Is.EqualTo(200), "the 201st byte of the stanza trips the limit");
        Assert.That(parser.StanzaBytesSoFar, Is.EqualTo(200));

        // The same stanza in one large buffer fails as well, without reading it to the end.
        var whole = Bytes("{H}").Concat(stanza).ToArray();
        Assert.That(() => Whole(whole, limits), Throws.TypeOf<XmppStreamException>().With.Property("Condition").EqualTo(StreamErrors.PolicyViolation));
    }

    [Test]
    public void A_stanza_of_exactly_the_size_limit_is_accepted()
    {
        var stanza = "<message><body>" + new string('b', 100) + "</body></message>";
        var limits = new ParserLimits { MaxStanzaBytes = Math.Max(stanza.Length, Bytes("{H}").Length) };
        var input = Bytes("{H}" + stanza + stanza);
        Assert.That(OneBytePerCall(input, limits).Count(i => i.Kind == XmlItemKind.Element), Is.EqualTo(2));
        Assert.That(Whole(input, limits).Count(i => i.Kind == XmlItemKind.Element), Is.EqualTo(2));

        var tooSmall = limits with { MaxStanzaBytes = stanza.Length - 1 };
        if (Bytes("{H}").Length <= tooSmall.MaxStanzaBytes)
            Assert.That(() => Whole(input, tooSmall), Throws.TypeOf<XmppStreamException>().With.Property("Condition").EqualTo(StreamErrors.PolicyViolation));
    }

    [TestCase("{H}<a><b><c/></b></a>", false, TestName = "Nesting at the depth limit is accepted")]
    [TestCase("{H}<a><b><c><d/></c></b></a>", true, TestName = "Nesting past the depth limit fails with policy violation")]
    public void Depth_limit(string input, bool fails) =>
        AssertLimit(input, new ParserLimits { MaxDepth = 3 }, fails);

    [TestCase("{S}<a x='1' y='2' xmlns:p='urn:p'/>", false, TestName = "Attributes at the limit are accepted")]
    [TestCase("{S}<a x='1' y='2' z='3' w='4'/>", true, TestName = "Too many attributes fail with policy violation")]
    [TestCase("{S}<a><b x='1' y='2' xmlns:p='urn:p' p:z='3'/></a>", true, TestName = "Too many attributes on a child fail with policy violation")]
    public void Attribute_limit(string input, bool fails) =>
        AssertLimit(input, new ParserLimits { MaxAttributes = 3 }, fails);

    [TestCase("{H}<abcdefghijklmnop/>", false, TestName = "Names at the length limit are accepted")]
    [TestCase("{H}<abcdefghijklmnopq/>", true, TestName = "Too long an element name fails with policy violation")]
    [TestCase("{H}<a abcdefghijklmnopq='1'/>", true, TestName = "Too long an attribute name fails with policy violation")]
    [TestCase("{H}<a></abcdefghijklmnopq>", true, TestName = "Too long an end tag name fails with policy violation")]
    public void Name_length_limit(string input, bool fails) =>
        AssertLimit(input, new ParserLimits { MaxNameLength = 16 }, fails);

    private static void AssertLimit(string input, ParserLimits limits, bool fails)
    {
        var bytes = Bytes(input);
        if (fails)
        {
            Assert.That(() => Whole(bytes, limits), Throws.TypeOf<XmppStreamException>().With.Property("Condition").EqualTo(StreamErrors.PolicyViolation));
            Assert.That(() => OneBytePerCall(bytes, limits), Throws.TypeOf<XmppStreamException>().With.Property("Condition").EqualTo(StreamErrors.PolicyViolation));
        }
        else
        {
            Assert.That(Whole(bytes, limits).Count(i => i.Kind == XmlItemKind.Element), Is.EqualTo(1));
            Assert.That(OneBytePerCall(bytes, limits), Is.EqualTo(Whole(bytes, limits)));
        }
    }

    [Test]
    public void Default_limits_are_the_documented_values()
    {
        var limits = new XmppStreamParser().Limits;
        Assert.That(limits, Is.SameAs(ParserLimits.Default));
        Assert.That(limits.MaxStanzaBytes, Is.EqualTo(256 * 1024));
        Assert.That(limits.MaxDepth, Is.EqualTo(48));
        Assert.That(limits.MaxAttributes, Is.EqualTo(64));
        Assert.That(limits.MaxNameLength, Is.EqualTo(256));
    }
}
