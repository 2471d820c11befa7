using System.Buffers;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Http.WebClients;

namespace Xmpp.Fuzz;

/// XEP-0124/0206 request bodies as BoshHandler reads them: an optional XML declaration, then exactly one &lt;body/&gt;
/// with its rid and wait; the payloads it carries, wrapped again in a response body (BoshBody.cs), must parse back
/// to the same elements. Input: one HTTP request body.
public static class BoshHarness
{


    public static void Run(byte[] data)
    {
        if (data.Length > XmlHarness.Limits.MaxStanzaBytes) return; // the handler refuses a larger body before parsing it
        FuzzAssert.WithinAllocationBound(data.Length, () => { Read(data); return 0; });
    }

    private static void Read(byte[] data)
    {
        Element body;
        try
        {
            var elements = new MessageParser(XmlHarness.Limits).Parse(BoshHandler.SkipDeclaration(data));
            if (elements.Count != 1) return;
            body = elements[0];
        }
        catch (XmppStreamException e)
        {
            FuzzAssert.True(XmlHarness.IsParserCondition(e.Condition), $"unexpected stream error condition {e.Condition}");
            return;
        }
        if (!body.Is("body", Ns.HttpBind) || !long.TryParse(body.Attr("rid"), out var rid) || rid < 0) return;
        _ = int.TryParse(body.Attr("wait"), out _);
        _ = body.Attr("sid");
        _ = body.Attr("type") == "terminate";

        var payloads = body.Elements().ToList();
        var serialized = payloads.Select(Framed).ToList();
        var response = BoshBody.Response(serialized, terminateCondition: null);
        var again = XmlHarness.ParseAll([.. XmlHarness.Context, .. response], int.MaxValue,
            XmlHarness.Limits with { MaxStanzaBytes = 16 * XmlHarness.Limits.MaxStanzaBytes + 1024, MaxDepth = XmlHarness.Limits.MaxDepth + 1 });
        FuzzAssert.True(again.Error is null && again.Elements.Count == 1, $"the response body does not parse ({again.Error})");
        var children = again.Elements[0].Elements().ToList();
        FuzzAssert.True(children.Count == payloads.Count, "the response body carries another number of payloads");
        for (int i = 0; i < children.Count; i++)
            FuzzAssert.True(Framed(children[i]).AsSpan().SequenceEqual(serialized[i]), "a payload changed on its way through the response body");

        // A session request's attributes become the header of the stream behind the session (FramingWriter.StreamHeader).
        var header = XmlHarness.ParseAll(FramingWriter.StreamHeader(body.Attr), int.MaxValue);
        FuzzAssert.True(header.Error is null && header.Items.Count == 1, $"the stream header built from the body does not parse ({header.Error})");
    }

    private static byte[] Framed(Element e)
    {
        var w = new ArrayBufferWriter<byte>();
        FramingWriter.Write(w, e);
        return w.WrittenSpan.ToArray();
    }
}
