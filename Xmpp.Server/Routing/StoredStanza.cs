using System.Buffers;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Routing;

/// Turns a stored, serialized stanza (jabber:client default namespace) back into an element.
public static class StoredStanza
{
    private static readonly byte[] Wrapper =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"u8.ToArray();

    public static Element Parse(ReadOnlyMemory<byte> payload)
    {
        var parser = new XmppStreamParser(new ParserLimits { MaxStanzaBytes = Math.Max(payload.Length + 1024, ParserLimits.Default.MaxStanzaBytes) });
        var header = new ReadOnlySequence<byte>(Wrapper);
        if (parser.Parse(header, out _, out _) != XmlItemKind.StreamHeader)
            throw new InvalidOperationException("stored stanza wrapper did not parse");
        var body = new ReadOnlySequence<byte>(payload);
        if (parser.Parse(body, out _, out var element) != XmlItemKind.Element || element is null)
            throw new FormatException("stored stanza is incomplete");
        return element;
    }
}
