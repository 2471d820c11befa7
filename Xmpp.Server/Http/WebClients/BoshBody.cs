using System.Buffers;

namespace Xmpp.Server.Http.WebClients;

/// The &lt;body/&gt; wrapper of XEP-0124 responses; children are already serialized, each declaring its namespace.
internal static class BoshBody
{
    /// terminateCondition: null for a normal body, "" for type='terminate', else the terminal condition (§17.2).
    public static byte[] Response(IReadOnlyList<byte[]> children, string? terminateCondition, string? attributes = null)
    {
        var w = new ArrayBufferWriter<byte>(256);
        w.Write("<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmlns:stream='http://etherx.jabber.org/streams'"u8);
        if (attributes is not null) w.Write(System.Text.Encoding.UTF8.GetBytes(attributes));
        if (terminateCondition is not null)
        {
            w.Write(" type='terminate'"u8);
            if (terminateCondition.Length > 0) w.Write(System.Text.Encoding.UTF8.GetBytes($" condition='{terminateCondition}'"));
        }
        if (children.Count == 0)
        {
            w.Write("/>"u8);
            return w.WrittenSpan.ToArray();
        }
        w.Write(">"u8);
        foreach (var c in children) w.Write(c);
        w.Write("</body>"u8);
        return w.WrittenSpan.ToArray();
    }

    public static byte[] Terminate(string condition) => Response([], condition);
}
