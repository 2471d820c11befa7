using System.Text;

namespace Xmpp.MicroBench;

/// The stanzas the benchmarks push through: what a chat client sends most.
public static class Stanzas
{
    public const string Header =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='bench.localhost' version='1.0' xml:lang='en'>";

    public const string Chat =
        "<message to='u17@bench.localhost' type='chat' id='b1-12345' xml:lang='en'><body>1:12345:638700000000000000 hello &amp; welcome</body>" +
        "<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>";

    public const string Presence =
        "<presence><show>away</show><status>at lunch</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>";

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
