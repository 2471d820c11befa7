using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// Steps the cluster tests share: chat messages, waiting until one node knows a session on another, and reading an
/// account's archive.
public static class ClusterSteps
{
    public static Element Chat(string to, string body, string type = "chat") =>
        new Element("message", Ns.Client).SetAttr("to", to).SetAttr("type", type).Add(new Element("body", Ns.Client).AddText(body));

    public static string? Body(Element e) => e.ChildText("body", Ns.Client);

    /// The id the recipient's archive gave a message (XEP-0359 stanza-id by the account): both copies of a message
    /// delivered twice (live from a node that died before confirming it, then from the spool) carry the same one.
    public static string? ArchiveId(Element message, string account) =>
        message.Elements("stanza-id", Ns.StanzaId).FirstOrDefault(s => s.Attr("by") == account)?.Attr("id");

    /// Bodies received both live and from the spool whose copies a client cannot tell are one message (no or different
    /// stanza-ids), as "body" per duplicate.
    public static List<string> UnrecognisableDuplicates(IReadOnlyDictionary<string, string?> live, IReadOnlyDictionary<string, string?> offline) =>
        live.Keys.Intersect(offline.Keys).Where(b => live[b] is null || live[b] != offline[b]).ToList();

    /// Until the sender's node knows the receiver's session: headlines to it until one arrives (a headline to a
    /// resource nobody has is dropped, RFC 6121 §8.5.2.1.1, so nothing is left behind in a spool).
    public static async Task UntilReachableAsync(TestClient from, TestClient to, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        for (int i = 0; DateTime.UtcNow < deadline; i++)
        {
            await from.SendAsync(Chat(to.Jid!.ToString(), "ping-" + i, "headline"));
            if (await to.TryReceiveAsync(e => Body(e)?.StartsWith("ping-", StringComparison.Ordinal) == true, TimeSpan.FromMilliseconds(300)) is not null)
            {
                await to.DrainAsync(TimeSpan.FromMilliseconds(100));
                return;
            }
        }
        Assert.Fail($"{to.Jid} never became reachable from {from.Jid}");
    }

    /// The bodies of the account's archived messages from one contact (XEP-0313 §4).
    public static async Task<List<string>> ArchivedFromAsync(TestClient c, string with)
    {
        var form = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" +
                   $"<field var='with'><value>{with}</value></field></x>";
        await c.SendAsync($"<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'>{form}<set xmlns='http://jabber.org/protocol/rsm'><max>2000</max></set></query></iq>");
        var bodies = new List<string>();
        while (true)
        {
            var e = await c.ReceiveAsync(m => (m.Name == "iq" && m.Attr("id") == "mam1") || m.Child("result", Ns.Mam) is not null, TimeSpan.FromSeconds(20));
            if (e.Name == "iq")
            {
                Assert.That(e.Attr("type"), Is.EqualTo("result"), e.ToString());
                return bodies;
            }
            if (Body(e.Child("result", Ns.Mam)!.FirstElement!.Child("message", Ns.Client)!) is { } b) bodies.Add(b);
        }
    }
}
