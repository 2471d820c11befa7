using Xmpp.Protocol;
using Xmpp.Server.Http.WebClients;

namespace Xmpp.Fuzz;

/// RFC 7395 messages on one WebSocket connection (MessageParser.cs, as WebSocketHandler uses it): each message parses
/// into whole elements or fails with a stream error; one parser serves the whole connection, as in the handler.
/// Input: text messages separated by 0xFF bytes (never part of UTF-8 text).
public static class WebSocketHarness
{
    public static void Run(byte[] data)
    {
        FuzzAssert.WithinAllocationBound(data.Length, () => { Read(data); return 0; });
    }

    private static void Read(byte[] data)
    {
        var parser = new MessageParser(XmlHarness.Limits);
        var rest = data.AsMemory();
        while (true)
        {
            int end = rest.Span.IndexOf((byte)0xFF);
            var message = end < 0 ? rest : rest[..end];
            // The handler refuses a longer message before parsing it.
            if (message.Length > XmlHarness.Limits.MaxStanzaBytes + 1024) return;
            try
            {
                var elements = parser.Parse(message);
                FuzzAssert.True(elements.All(e => e is not null), "a null element");
            }
            catch (XmppStreamException e)
            {
                FuzzAssert.True(XmlHarness.IsParserCondition(e.Condition), $"unexpected stream error condition {e.Condition}");
                return;
            }
            if (end < 0) return;
            rest = rest[(end + 1)..];
        }
    }
}
