using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Bench;

/// The session start of a phone messenger (the order Conversations and Gajim use), for measuring what such a session
/// leaves on the server rather than what a minimal login does: after bind, stream management with resumption, the
/// roster, carbons, initial presence with entity capabilities (the server's disco#info query answered), the last page
/// of the archive, the bookmarks, the blocklist, and then client state "inactive" as a phone with its screen off.
public sealed partial class BenchClient
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<Element>> _requests = new(StringComparer.Ordinal);
    private int _nextRequest;

    /// IQ replies with type error during the session start (an archive or bookmarks the server does not have).
    public int StartErrors { get; private set; }

    /// The first of those errors, for the result line.
    public string? FirstStartError { get; private set; }

    private const string CapsNode = "https://xmpp-bench.invalid/messenger";
    private const string Identity = "client/phone//xmpp-bench";

    // What the client announces: its +notify interests make the server push the PEP items a real client gets at login.
    private static readonly string[] Features =
    [
        Ns.DiscoInfo, Ns.Caps, Ns.Ping, Ns.Carbons, Ns.Csi, "urn:xmpp:receipts", "urn:xmpp:chat-markers:0",
        "urn:xmpp:bookmarks:1+notify", "urn:xmpp:avatar:metadata+notify", "http://jabber.org/protocol/nick+notify",
        "eu.siacs.conversations.axolotl.devicelist+notify", "urn:xmpp:mds:displayed:0+notify",
    ];

    // XEP-0115 §5.1: identities then features, each sorted and followed by '<', SHA-1, base64.
    private static readonly string CapsVer = Convert.ToBase64String(SHA1.HashData(Encoding.UTF8.GetBytes(
        Identity + "<" + string.Concat(Features.Order(StringComparer.Ordinal).Select(f => f + "<")))));

    private async Task MessengerSessionStartAsync(CancellationToken ct)
    {
        await EnableStreamManagementAsync(ct, resume: true);
        StartReading();
        await RequestAsync(Iq("get", new Element("query", Ns.Roster).SetAttr("ver", "")), ct);
        await RequestAsync(Iq("set", new Element("enable", Ns.Carbons)), ct);
        await RequestAsync(Iq("get", new Element("query", Ns.DiscoInfo)).SetAttr("to", _target.Domain), ct);
        await SendAsync(new Element("presence", Ns.Client)
            .Add(new Element("c", Ns.Caps).SetAttr("hash", "sha-1").SetAttr("node", CapsNode).SetAttr("ver", CapsVer)), ct);
        // XEP-0313 §4.3.2 (RSM paging): the newest page first.
        await RequestAsync(Iq("set", new Element("query", Ns.Mam).SetAttr("queryid", "catchup")
            .Add(new Element("set", Ns.Rsm).Add(new Element("max", Ns.Rsm).SetText("20")).Add(new Element("before", Ns.Rsm)))), ct);
        await RequestAsync(Iq("get", new Element("pubsub", Ns.PubSub).Add(new Element("items", Ns.PubSub).SetAttr("node", Ns.Bookmarks))), ct);
        await RequestAsync(Iq("get", new Element("blocklist", Ns.Blocking)), ct);
        await SendRawAsync("<inactive xmlns='urn:xmpp:csi:0'/>"u8.ToArray(), ct);
    }

    private Element Iq(string type, Element payload) =>
        new Element("iq", Ns.Client).SetAttr("type", type).SetAttr("id", "m" + Interlocked.Increment(ref _nextRequest)).Add(payload);

    /// Sends an IQ and waits for its result or error (matched by id in the read loop).
    private async Task<Element> RequestAsync(Element iq, CancellationToken ct)
    {
        var id = iq.Attr("id")!;
        var tcs = new TaskCompletionSource<Element>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests[id] = tcs;
        try
        {
            await SendAsync(iq, ct);
            var reply = await tcs.Task.WaitAsync(ct);
            if (reply.Attr("type") == "error" && StartErrors++ == 0) FirstStartError = reply.ToString();
            return reply;
        }
        finally { _requests.TryRemove(id, out _); }
    }

    private bool CompleteRequest(Element e)
    {
        if (e.Name != "iq" || e.Attr("type") is not ("result" or "error") || e.Attr("id") is not { } id) return false;
        if (!_requests.TryGetValue(id, out var tcs)) return false;
        tcs.TrySetResult(e);
        return true;
    }

    private static Element DiscoInfoResult(Element get, Element query)
    {
        var result = new Element("query", Ns.DiscoInfo);
        if (query.Attr("node") is { } node) result.SetAttr("node", node);
        result.Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "client").SetAttr("type", "phone").SetAttr("name", "xmpp-bench"));
        foreach (var f in Features) result.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
        return new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", get.Attr("id")).SetAttr("to", get.Attr("from")).Add(result);
    }
}
