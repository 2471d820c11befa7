using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// A XEP-0124/0206 client over HttpClient with explicit request ids, so tests can hold, repeat and reorder requests.
public sealed class BoshTestClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _url;

    public BoshTestClient(TestServer server)
    {
        _http = UploadClient.Http(server);
        _url = Url(server);
    }

    public static string Url(TestServer server) => $"https://127.0.0.1:{server.HttpPort}/http-bind";

    public string? Sid { get; private set; }
    public long Rid { get; set; } = 1000;
    public HttpClient Http => _http;

    /// Posts a raw body and returns the response's &lt;body/&gt;.
    public async Task<Element> PostAsync(string xml)
    {
        using var response = await _http.PostAsync(_url, new StringContent(xml, Encoding.UTF8, "text/xml"));
        response.EnsureSuccessStatusCode();
        return WebSocketTestClient.ParseStandalone(await response.Content.ReadAsStringAsync());
    }

    public async Task<string> PostRawAsync(string xml)
    {
        using var response = await _http.PostAsync(_url, new StringContent(xml, Encoding.UTF8, "text/xml"));
        return await response.Content.ReadAsStringAsync();
    }

    public async Task<Element> CreateAsync(string domain, int wait = 60)
    {
        var body = await PostAsync($"<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='{Rid++}' to='{domain}' wait='{wait}' hold='1' ver='1.11' xmpp:version='1.0' xml:lang='en'/>");
        Sid = body.Attr("sid");
        return body;
    }

    /// The body for the next rid with the given payload (and extra attributes); not yet sent.
    public string Next(string payload = "", string attributes = "") =>
        $"<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' rid='{Rid++}' sid='{Sid}'{attributes}>{payload}</body>";

    public Task<Element> SendAsync(string payload = "", string attributes = "") => PostAsync(Next(payload, attributes));

    /// Sends payload, then keeps polling until an element matching arrives.
    public async Task<Element> ExpectAsync(Func<Element, bool> match, string payload = "")
    {
        var deadline = DateTime.UtcNow + TestClient.DefaultTimeout;
        var body = await SendAsync(payload);
        while (true)
        {
            foreach (var e in body.Elements()) if (match(e)) return e;
            if (body.Attr("type") == "terminate") throw new InvalidOperationException("session terminated: " + body);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("nothing matching arrived");
            body = await SendAsync();
        }
    }

    /// Creates a session, authenticates with SCRAM-SHA-256, restarts and binds.
    public async Task LoginAsync(TestServer server, string user, string password, string resource, int wait = 60)
    {
        var created = await CreateAsync(server.Domain, wait);
        if (created.Elements().All(e => e.Name != "features")) await ExpectAsync(e => e.Name == "features");
        ScramHashes.TryParseMechanism("SCRAM-SHA-256", out var hash, out _);
        var scram = new ScramClient(hash, user, password, null, serverSupportsPlus: false);
        var auth = new Element("auth", Ns.Sasl).SetAttr("mechanism", "SCRAM-SHA-256").SetText(Convert.ToBase64String(scram.ClientFirst()));
        var challenge = await ExpectAsync(e => e.Namespace == Ns.Sasl, Xml(auth));
        var response = new Element("response", Ns.Sasl).SetText(Convert.ToBase64String(scram.ClientFinal(Convert.FromBase64String(challenge.Text))));
        var success = await ExpectAsync(e => e.Namespace == Ns.Sasl, Xml(response));
        if (!success.Is("success", Ns.Sasl)) throw new AuthenticationFailedException(success);
        await ExpectAsync(e => e.Name == "features", attributesRestart: true, domain: server.Domain);
        var bound = await ExpectAsync(e => e.Name == "iq",
            $"<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
        if (bound.Attr("type") != "result") throw new InvalidOperationException("bind failed: " + bound);
    }

    private async Task<Element> ExpectAsync(Func<Element, bool> match, bool attributesRestart, string domain)
    {
        var body = await SendAsync("", $" xmpp:restart='true' to='{domain}' xml:lang='en'");
        foreach (var e in body.Elements()) if (match(e)) return e;
        return await ExpectAsync(match);
    }

    public static string Xml(Element e) => Encoding.UTF8.GetString(ElementWriter.ToBytes(e, ""));

    public void Dispose() => _http.Dispose();
}
