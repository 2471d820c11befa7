using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Protocol;

[TestFixture]
public sealed class JidCacheTests
{
    [TestCase("juliet@capulet.example/balcony")]
    [TestCase("juliet@capulet.example")]
    [TestCase("capulet.example")]
    [TestCase("JULIET@Capulet.Example/Balcony")]
    [TestCase("ju\u0308liet@capulet.example")]
    public void A_cached_address_parses_exactly_as_jid_parse_does(string address)
    {
        Assert.That(JidCache.TryParse(address, out var first), Is.True);
        Assert.That(JidCache.TryParse(address, out var second), Is.True);
        var direct = Jid.Parse(address);
        Assert.That(first, Is.EqualTo(direct));
        Assert.That(second!.ToString(), Is.EqualTo(direct.ToString()));
        Assert.That(second, Is.SameAs(first), "the second parse comes from the cache");
    }

    [TestCase("@capulet.example")]
    [TestCase("juliet@")]
    [TestCase("juliet@capulet.example/")]
    [TestCase("a\ud800@capulet.example")]
    public void An_invalid_address_is_refused_every_time(string address)
    {
        Assert.That(JidCache.TryParse(address, out _), Is.False);
        Assert.That(JidCache.TryParse(address, out _), Is.False);
    }

    [Test]
    public void A_lone_surrogate_does_not_hit_the_entry_of_the_replacement_character()
    {
        // Both encode to the same UTF-8 bytes (U+FFFD), but only the second is a valid address.
        Assert.That(JidCache.TryParse("juliet@capulet.example/a\ufffd", out _), Is.True);
        Assert.That(JidCache.TryParse("juliet@capulet.example/a\ud800", out _), Is.False);
    }

    [Test]
    public void The_parser_hands_out_one_string_per_address_and_the_router_one_jid()
    {
        var parser = new XmppStreamParser();
        var stream = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
            + "<message to='romeo@montague.example' id='a'/><message to='romeo@montague.example' id='b'/>";
        var bytes = new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(stream));
        var items = new List<Element>();
        while (true)
        {
            var kind = parser.Parse(bytes, out var consumed, out var item);
            bytes = bytes.Slice(consumed);
            if (kind == XmlItemKind.NeedMoreData) break;
            if (kind == XmlItemKind.Element) items.Add(item!);
        }
        Assert.That(items, Has.Count.EqualTo(2));
        Assert.That(items[1].Attr("to"), Is.SameAs(items[0].Attr("to")));
        Assert.That(items[1].Attr("id"), Is.EqualTo("b"));
        JidCache.TryParse(items[0].Attr("to"), out var first);
        JidCache.TryParse(items[1].Attr("to"), out var second);
        Assert.That(second, Is.SameAs(first));
    }

    [Test]
    public void A_long_address_is_parsed_but_not_cached()
    {
        var address = new string('a', JidCache.MaxBytes) + "@capulet.example";
        Assert.That(JidCache.TryParse(address, out var first), Is.True);
        Assert.That(JidCache.TryParse(address, out var second), Is.True);
        Assert.That(second, Is.Not.SameAs(first));
        Assert.That(second, Is.EqualTo(first));
    }
}
