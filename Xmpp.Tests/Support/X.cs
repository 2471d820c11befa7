using System.Buffers;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// Builds elements from XML text in tests (default namespace jabber:client) and compares them structurally.
public static class X
{
    public static Element Parse(string xml)
    {
        var parser = new XmppStreamParser();
        var wrapped = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" + xml;
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(wrapped));
        var kind = parser.Parse(buffer, out var consumed, out _);
        if (kind != XmlItemKind.StreamHeader) throw new InvalidOperationException("wrapper header not parsed");
        buffer = buffer.Slice(consumed);
        kind = parser.Parse(buffer, out _, out var element);
        if (kind != XmlItemKind.Element) throw new FormatException("not one complete element: " + xml);
        return element!;
    }

    /// True when every attribute and child of the pattern appears in the actual element ("*" matches any value);
    /// attribute order, extra attributes and extra children are ignored.
    public static bool Matches(Element actual, Element pattern)
    {
        if (actual.Name != pattern.Name || actual.Namespace != pattern.Namespace) return false;
        foreach (var a in pattern.Attributes)
        {
            if (a.Name.StartsWith("xmlns", StringComparison.Ordinal)) continue;
            var v = actual.Attr(a.Name);
            if (v is null || (a.Value != "*" && a.Value != v)) return false;
        }
        var text = pattern.Text;
        if (text.Length > 0 && text != "*" && actual.Text != text) return false;
        foreach (var child in pattern.Elements())
            if (!actual.Elements().Any(c => Matches(c, child))) return false;
        return true;
    }

    public static bool Matches(Element actual, string pattern) => Matches(actual, Parse(pattern));
}
