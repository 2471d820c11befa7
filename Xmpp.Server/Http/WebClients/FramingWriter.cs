using System.Buffers;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Http.WebClients;

/// Writes stream items as self-contained XML for framed transports, where no stream header declares namespaces:
/// every element carries its own (RFC 7395 §3.3.3; XEP-0206 §8 for BOSH bodies).
internal static class FramingWriter
{
    public static byte[] Close { get; } = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"u8.ToArray();

    /// stream:features and stream:error keep the 'stream' prefix and declare it themselves.
    public static void Write(IBufferWriter<byte> w, Element e)
    {
        if (e.Namespace != Ns.Streams)
        {
            // An element in no namespace says so (xmlns=''): a BOSH response wraps it in <body xmlns=httpbind>, whose
            // default namespace it would otherwise take on (found by the bosh fuzz harness).
            ElementWriter.Write(w, e, e.Namespace.Length == 0 ? "\u0000" : "");
            return;
        }
        w.Write("<stream:"u8);
        ElementWriter.WriteRaw(w, e.Name);
        w.Write(" xmlns:stream=\"http://etherx.jabber.org/streams\""u8);
        WriteAttributes(w, e);
        if (e.IsEmpty)
        {
            w.Write("/>"u8);
            return;
        }
        w.Write(">"u8);
        foreach (var n in e.Nodes)
        {
            if (n is Element c) ElementWriter.Write(w, c, "");
            else if (n is TextNode t) ElementWriter.WriteEscaped(w, t.Value, attribute: false);
        }
        w.Write("</stream:"u8);
        ElementWriter.WriteRaw(w, e.Name);
        w.Write(">"u8);
    }

    /// RFC 7395 §3.3.2: the server's &lt;open/&gt; carries what its stream header would.
    public static byte[] Open(Element header)
    {
        var w = new ArrayBufferWriter<byte>(160);
        w.Write("<open xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\""u8);
        foreach (var name in HeaderAttributes)
            if (header.Attr(name) is { } value) Attribute(w, name, value);
        w.Write("/>"u8);
        return w.WrittenSpan.ToArray();
    }

    /// The stream header an XmppStream expects, built from a client's &lt;open/&gt; (or a BOSH session request).
    public static byte[] StreamHeader(Func<string, string?> attribute)
    {
        var w = new ArrayBufferWriter<byte>(200);
        w.Write("<stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\""u8);
        foreach (var name in HeaderAttributes)
            if (name != "id" && attribute(name) is { } value) Attribute(w, name, value);
        w.Write(">"u8);
        return w.WrittenSpan.ToArray();
    }

    private static readonly string[] HeaderAttributes = ["from", "to", "id", "version", "xml:lang"];

    private static void WriteAttributes(IBufferWriter<byte> w, Element e)
    {
        foreach (var a in e.Attributes)
            if (a.Name != "xmlns" && !a.Name.StartsWith("xmlns:", StringComparison.Ordinal)) Attribute(w, a.Name, a.Value);
    }

    private static void Attribute(IBufferWriter<byte> w, string name, string value)
    {
        w.Write(" "u8);
        ElementWriter.WriteRaw(w, name);
        w.Write("=\""u8);
        ElementWriter.WriteEscaped(w, value, attribute: true);
        w.Write("\""u8);
    }
}
