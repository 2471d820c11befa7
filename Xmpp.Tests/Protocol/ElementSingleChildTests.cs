using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Protocol;

/// An element with a single child keeps it without a node list (issue 18: fewer allocations per stanza); every way of
/// reading or changing the content must see the same element as with a list.
[TestFixture]
public sealed class ElementSingleChildTests
{
    [Test]
    public void A_single_text_child_reads_serializes_and_clones_like_a_text_node()
    {
        var body = new Element("body", Ns.Client).AddText("Hello ").AddText("Juliet");
        Assert.That(body.Text, Is.EqualTo("Hello Juliet"));
        Assert.That(body.IsEmpty, Is.False);
        Assert.That(body.FirstElement, Is.Null);
        Assert.That(body.Elements(), Is.Empty);
        Assert.That(ElementWriterText(body), Is.EqualTo("<body>Hello Juliet</body>"));
        var clone = body.Clone();
        Assert.That(clone.Text, Is.EqualTo("Hello Juliet"));
        Assert.That(body.Nodes, Has.Count.EqualTo(1));
        Assert.That(((TextNode)body.Nodes[0]).Value, Is.EqualTo("Hello Juliet"));
        body.AddText("!");
        Assert.That(body.Text, Is.EqualTo("Hello Juliet!"));
        Assert.That(clone.Text, Is.EqualTo("Hello Juliet"), "the clone does not share the content");
    }

    [Test]
    public void A_single_child_element_is_found_enumerated_serialized_and_removed()
    {
        var body = new Element("body", Ns.Client).SetText("hi");
        var message = new Element("message", Ns.Client).SetAttr("to", "juliet@capulet.example").Add(body);
        Assert.That(message.Child("body", Ns.Client), Is.SameAs(body));
        Assert.That(message.Child("body", Ns.Carbons), Is.Null);
        Assert.That(message.ChildIn(Ns.Client), Is.SameAs(body));
        Assert.That(message.FirstElement, Is.SameAs(body));
        Assert.That(message.Elements().ToList(), Is.EqualTo(new[] { body }));
        Assert.That(message.Elements("body", Ns.Client).ToList(), Is.EqualTo(new[] { body }));
        Assert.That(message.Elements("private", Ns.Carbons).ToList(), Is.Empty);
        Assert.That(message.Text, Is.Empty);
        Assert.That(ElementWriterText(message), Is.EqualTo("<message to=\"juliet@capulet.example\"><body>hi</body></message>"));
        var clone = message.Clone();
        Assert.That(clone.Child("body", Ns.Client), Is.Not.SameAs(body));
        Assert.That(clone.ChildText("body", Ns.Client), Is.EqualTo("hi"));
        Assert.That(message.RemoveAll("body", Ns.Client), Is.EqualTo(1));
        Assert.That(message.IsEmpty, Is.True);
        Assert.That(clone.Remove(clone.FirstElement!), Is.True);
        Assert.That(clone.IsEmpty, Is.True);
    }

    [Test]
    public void A_second_child_keeps_the_order_whatever_the_first_was()
    {
        var withText = new Element("x", "urn:test").AddText("a").Add(new Element("b", "urn:test")).AddText("c");
        Assert.That(ElementWriterText(withText), Is.EqualTo("<x xmlns=\"urn:test\">a<b/>c</x>"));
        var withElement = new Element("x", "urn:test").Add(new Element("a", "urn:test")).AddText("b").Add(new Element("c", "urn:test"));
        Assert.That(ElementWriterText(withElement), Is.EqualTo("<x xmlns=\"urn:test\"><a/>b<c/></x>"));
        Assert.That(withElement.Elements().Select(e => e.Name), Is.EqualTo(new[] { "a", "c" }));
        Assert.That(withElement.Nodes, Has.Count.EqualTo(3));
    }

    [Test]
    public void Nodes_read_on_several_threads_at_once_return_one_list()
    {
        for (int round = 0; round < 200; round++)
        {
            var message = new Element("message", Ns.Client).Add(new Element("body", Ns.Client).SetText("hi"));
            var lists = new IReadOnlyList<Node>[4];
            Parallel.For(0, lists.Length, i => lists[i] = message.Nodes);
            Assert.That(lists.Distinct().Count(), Is.EqualTo(1));
            Assert.That(lists[0], Has.Count.EqualTo(1));
        }
    }

    private static string ElementWriterText(Element e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        ElementWriter.Write(buffer, e, e.Namespace == "urn:test" ? "" : Ns.Client);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan).Replace('\'', '"');
    }
}
