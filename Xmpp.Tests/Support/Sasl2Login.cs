using System.Security.Cryptography.X509Certificates;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// The client side of XEP-0388 SASL2 (with XEP-0386 Bind 2 and XEP-0484 tokens) for protocol tests.
public static class Sasl2Login
{
    public static Element? Feature(this TestClient c) => c.Features?.Child("authentication", Ns.Sasl2);

    public static IReadOnlyList<string> Sasl2Mechanisms(this TestClient c) =>
        c.Feature()?.Elements("mechanism", Ns.Sasl2).Select(m => m.Text).ToList() ?? [];

    public static IReadOnlyList<string> FastMechanisms(this TestClient c) =>
        c.Feature()?.Child("inline", Ns.Sasl2)?.Child("fast", Ns.Fast)?.Elements("mechanism", Ns.Fast).Select(m => m.Text).ToList() ?? [];

    public static IReadOnlyList<string>? ChannelBindingTypes(this TestClient c) =>
        c.Features?.Child("sasl-channel-binding", Ns.SaslChannelBinding)?.Elements("channel-binding", Ns.SaslChannelBinding)
            .Select(e => e.Attr("type")!).ToList();

    public static byte[] EndPointBinding(this TestClient c) =>
        ChannelBinding.TlsServerEndPoint(X509CertificateLoader.LoadCertificate(c.Tls!.RemoteCertificate!.GetRawCertData()));

    public static Element Authenticate(string mechanism, byte[]? initial, string? userAgent = "b2d8a2d6-1c3e-4b9e-9d1a-5bd0c6e2a001")
    {
        var e = new Element("authenticate", Ns.Sasl2).SetAttr("mechanism", mechanism);
        if (initial is not null) e.Add(new Element("initial-response", Ns.Sasl2).SetText(Convert.ToBase64String(initial)));
        if (userAgent is not null)
            e.Add(new Element("user-agent", Ns.Sasl2).SetAttr("id", userAgent)
                .Add(new Element("software", Ns.Sasl2).SetText("TestClient"))
                .Add(new Element("device", Ns.Sasl2).SetText("CI box")));
        return e;
    }

    public static Element Bind(string? tag = null, params Element[] inline)
    {
        var bind = new Element("bind", Ns.Bind2);
        if (tag is not null) bind.Add(new Element("tag", Ns.Bind2).SetText(tag));
        foreach (var i in inline) bind.Add(i);
        return bind;
    }

    public static Element RequestToken(string mechanism) => new Element("request-token", Ns.Fast).SetAttr("mechanism", mechanism);

    /// Runs a SCRAM (or PLAIN) exchange over SASL2 and returns the outcome: success (server signature checked) or failure.
    /// On success the features that follow without a restart are read into <paramref name="features"/>.
    public static async Task<(Element Outcome, ScramClient? Scram)> ScramAsync(this TestClient c, string user, string password,
        string mechanism = "SCRAM-SHA-256", Action<Element>? extend = null, string? userAgent = "b2d8a2d6-1c3e-4b9e-9d1a-5bd0c6e2a001")
    {
        if (mechanism == "PLAIN")
        {
            var plain = Authenticate("PLAIN", PlainMechanism.Build(null, user, password), userAgent);
            extend?.Invoke(plain);
            await c.SendAsync(plain);
            return (await c.ReadElementAsync(), null);
        }
        ScramHashes.TryParseMechanism(mechanism, out var hash, out var plus);
        var scram = new ScramClient(hash, user, password, plus ? c.EndPointBinding() : null, serverSupportsPlus: c.Sasl2Mechanisms().Any(m => m.EndsWith("-PLUS")));
        var auth = Authenticate(mechanism, scram.ClientFirst(), userAgent);
        extend?.Invoke(auth);
        await c.SendAsync(auth);
        var challenge = await c.ReadElementAsync();
        if (!challenge.Is("challenge", Ns.Sasl2)) return (challenge, scram);
        await c.SendAsync(new Element("response", Ns.Sasl2).SetText(Convert.ToBase64String(scram.ClientFinal(Convert.FromBase64String(challenge.Text)))));
        var outcome = await c.ReadElementAsync();
        if (outcome.Is("success", Ns.Sasl2)
            && !scram.VerifyServerFinal(Convert.FromBase64String(outcome.ChildText("additional-data", Ns.Sasl2) ?? "")))
            throw new InvalidOperationException("server signature did not verify");
        return (outcome, scram);
    }

    /// A XEP-0484 token login: one message, one answer.
    public static async Task<Element> TokenAsync(this TestClient c, string user, string token, string mechanism,
        Action<Element>? extend = null, string? userAgent = "b2d8a2d6-1c3e-4b9e-9d1a-5bd0c6e2a001", long? count = null, bool invalidate = false)
    {
        var cb = mechanism == HashedToken.Sha256EndPoint ? c.EndPointBinding() : [];
        var auth = Authenticate(mechanism, HashedToken.BuildInitial(user, Encoding.UTF8.GetBytes(token), cb), userAgent);
        var fast = new Element("fast", Ns.Fast);
        if (count is not null) fast.SetAttr("count", count.ToString());
        if (invalidate) fast.SetAttr("invalidate", "true");
        auth.Add(fast);
        extend?.Invoke(auth);
        await c.SendAsync(auth);
        var outcome = await c.ReadElementAsync();
        if (outcome.Is("success", Ns.Sasl2))
        {
            var expected = HashedToken.Responder(Encoding.UTF8.GetBytes(token), cb);
            Assert.That(Convert.FromBase64String(outcome.ChildText("additional-data", Ns.Sasl2) ?? ""), Is.EqualTo(expected),
                "the server proves it holds the token too");
        }
        return outcome;
    }

    /// A SCRAM-SHA-256 exchange with the gs2 flag 'y' ("I can bind, you seem not to"), as slixmpp sends when it sees no
    /// -PLUS, over RFC 6120 SASL or SASL2; returns the outcome (success or failure).
    public static async Task<(Element Outcome, ScramClient Scram)> ScramYAsync(this TestClient c, string user, string password, bool sasl2)
    {
        var scram = new ScramClient(ScramHash.Sha256, user, password, cbindData: c.EndPointBinding(), serverSupportsPlus: false);
        var ns = sasl2 ? Ns.Sasl2 : Ns.Sasl;
        await c.SendAsync(sasl2
            ? Authenticate("SCRAM-SHA-256", scram.ClientFirst())
            : new Element("auth", Ns.Sasl).SetAttr("mechanism", "SCRAM-SHA-256").SetText(Convert.ToBase64String(scram.ClientFirst())));
        var challenge = await c.ReadElementAsync();
        if (!challenge.Is("challenge", ns)) return (challenge, scram);
        await c.SendAsync(new Element("response", ns).SetText(Convert.ToBase64String(scram.ClientFinal(Convert.FromBase64String(challenge.Text)))));
        return (await c.ReadElementAsync(), scram);
    }

    public static string? Condition(this Element failure) =>
        failure.Elements().FirstOrDefault(e => e.Namespace == Ns.Sasl)?.Name;
}
