using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Protocol;

[TestFixture]
public sealed class ElementTests
{
    private static Element Message()
    {
        var message = new Element("message", "jabber:client");
        message.Add(new Element("body", "jabber:client").AddText("hi"));
        message.AddText("stray text");
        message.Add(new Element("stanza-id", "urn:xmpp:sid:0").SetAttr("id", "a"));
        message.Add(new Element("stanza-id", "urn:other").SetAttr("id", "b"));
        message.Add(new Element("stanza-id", "urn:xmpp:sid:0").SetAttr("id", "c"));
        return message;
    }

    [Test]
    public void Elements_lists_the_child_elements_in_order_and_skips_text()
    {
        var names = new List<string>();
        foreach (var e in Message().Elements())
            names.Add(e.Name + "/" + (e.Attr("id") ?? "-"));
        Assert.That(names, Is.EqualTo(new[] { "body/-", "stanza-id/a", "stanza-id/b", "stanza-id/c" }));
    }

    [Test]
    public void Elements_by_name_and_namespace_keeps_only_matching_children()
    {
        var ids = new List<string?>();
        foreach (var e in Message().Elements("stanza-id", "urn:xmpp:sid:0"))
            ids.Add(e.Attr("id"));
        Assert.That(ids, Is.EqualTo(new[] { "a", "c" }));
        // The same through IEnumerable (LINQ), and nothing for an element without children.
        Assert.That(Message().Elements("stanza-id", "urn:other").Select(e => e.Attr("id")), Is.EqualTo(new[] { "b" }));
        Assert.That(new Element("x").Elements().Any(), Is.False);
        Assert.That(Message().Elements("body", "urn:other").Count(), Is.Zero);
    }
}
