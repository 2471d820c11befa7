using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Http.WebClients;
using Xmpp.Server.Streams;

namespace Xmpp.Fuzz;

/// XEP-0388 SASL2 messages as the stream reads them (XmppStream.Sasl2.cs): an &lt;authenticate/&gt; with its
/// mechanism, base64 initial response, user agent, FAST request and count, or a &lt;response/&gt;; the decoded
/// initial response goes to the mechanism's parser (PLAIN, SCRAM client-first, XEP-0484 HT). Input: elements as
/// a client sends them after the stream header.
public static class Sasl2Harness
{
    public static void Run(byte[] data)
    {
        FuzzAssert.WithinAllocationBound(data.Length, () => { Read(data); return 0; });
    }

    private static void Read(byte[] data)
    {
        if (XmlHarness.ClientElements(data) is not { } elements) return;
        foreach (var e in elements)
        {
            if (e.Is("authenticate", Ns.Sasl2)) Authenticate(e);
            else if (e.Is("response", Ns.Sasl2) && XmppStream.TryDecodeSasl2(e.Text, out var response))
                FuzzAssert.True(response is not null && response.Length <= 6144, "a decoded response larger than its 8192-character bound");
        }
    }

    private static void Authenticate(Element authenticate)
    {
        var mechanism = authenticate.Attr("mechanism") ?? "";
        byte[]? initial = null;
        if (authenticate.Child("initial-response", Ns.Sasl2) is { } ir && !XmppStream.TryDecodeSasl2(ir.Text, out initial))
            return;
        _ = authenticate.Child("user-agent", Ns.Sasl2)?.Attr("id");
        _ = authenticate.Child("request-token", Ns.Fast)?.Attr("mechanism");
        if (authenticate.Child("fast", Ns.Fast)?.Attr("count") is { } countText)
            _ = long.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out _);
        if (initial is null) return;

        if (mechanism == PlainMechanism.Name)
        {
            if (PlainMechanism.TryParse(initial, out _, out var username, out var password))
                FuzzAssert.True(username.Length > 0 && password.Length > 0, "PLAIN accepted an empty username or password");
        }
        else if (ScramHashes.TryParseMechanism(mechanism, out var hash, out var plus))
        {
            var server = new ScramServer(hash, plus, plus ? new byte[32] : null, serverOffersPlus: true);
            var outcome = server.ClientFirst(initial, out _, out _, out var failure);
            FuzzAssert.True(outcome == SaslOutcome.Continue || failure is not null, "a SCRAM failure without a condition");
        }
        else if (HashedToken.TryParseMechanism(mechanism, out _))
        {
            if (HashedToken.TryParseInitial(initial, out var username, out var hashValue))
                FuzzAssert.True(username.Length > 0 && hashValue.Length == 32, "HT accepted an empty name or a hash of the wrong size");
        }
    }
}
