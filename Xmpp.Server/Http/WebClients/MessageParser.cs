using System.Buffers;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Http.WebClients;

/// Parses the whole elements of a framed message (a WebSocket message, a BOSH body) with the stream parser and its
/// limits, inside a stream context that is never shown to the client.
internal sealed class MessageParser
{
    private static readonly byte[] Context = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"u8.ToArray();
    private readonly XmppStreamParser _parser;

    public MessageParser(ParserLimits limits)
    {
        _parser = new XmppStreamParser(limits);
        _parser.Parse(new ReadOnlySequence<byte>(Context), out _, out _);
    }

    public List<Element> Parse(ReadOnlyMemory<byte> message)
    {
        // RFC 7395 §3.3.1: the stream is opened with <open/>; a stream header (or an XML declaration) is not XMPP over WebSocket.
        var trimmed = message.Span.TrimStart(" \t\r\n"u8);
        if (trimmed.StartsWith("<?xml"u8) || trimmed.StartsWith("<stream:"u8) || trimmed.StartsWith("</stream:"u8))
            throw new XmppStreamException(StreamErrors.InvalidNamespace,
                "Open the stream with <open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/> (RFC 7395 §3.3.1)");
        var elements = new List<Element>(1);
        var buffer = new ReadOnlySequence<byte>(message);
        while (true)
        {
            var kind = _parser.Parse(buffer, out var consumed, out var item);
            buffer = buffer.Slice(consumed);
            if (kind == XmlItemKind.NeedMoreData) break;
            if (kind != XmlItemKind.Element) throw new XmppStreamException(StreamErrors.InvalidNamespace, "Close the stream with <close/>");
            elements.Add(item!);
        }
        // RFC 7395 §3.2: a message holds complete elements only.
        if (_parser.StanzaBytesSoFar > 0) throw new XmppStreamException(StreamErrors.NotWellFormed, "A message must hold one complete element");
        return elements;
    }
}
