using System.Net;
using System.Net.WebSockets;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// RFC 7395 over real TLS: a browser-style client on /xmpp-websocket runs the same stream as TCP clients.
[TestFixture]
public sealed class WebSocketTests
{
    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:StreamManagement:ResumeTimeoutSeconds"] = "120";
            configure?.Invoke(o);
        });
        await server.AddUserAsync("romeo", "pw-romeo");
        await server.AddUserAsync("juliet", "pw-juliet");
        return server;
    }

    [Test]
    public async Task A_websocket_client_opens_authenticates_with_scram_binds_and_chats_with_a_tcp_client()
    {
        await using var server = await Server();
        await using var ws = await WebSocketTestClient.ConnectRawAsync(server);
        var open = await ws.OpenAsync(server.Domain);
        Assert.That(X.Matches(open, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='*' version='1.0'/>"), open.ToString());
        Assert.That(ws.Features!.Is("features", Ns.Streams), ws.Features.ToString());
        Assert.That(ws.Features.Child("starttls", Ns.Tls), Is.Null, "TLS is the WebSocket's (wss:), never STARTTLS");
        Assert.That(ws.Features.Child("mechanisms", Ns.Sasl), Is.Not.Null);
        await ws.AuthenticateAsync("romeo", "pw-romeo", server.Domain);
        await ws.BindAsync("browser");
        Assert.That(ws.Jid!.ToString(), Is.EqualTo("romeo@localhost/browser"));

        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "pw-juliet", "phone", sendPresence: true);
        await ws.SendAsync("<presence xmlns='jabber:client'/>");
        await ws.SendAsync("<message xmlns='jabber:client' to='juliet@localhost/phone' type='chat' id='m1'><body>Over the socket</body></message>");
        var got = await juliet.ReceiveAsync("message");
        Assert.That(got.Attr("from"), Is.EqualTo("romeo@localhost/browser"));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("Over the socket"));

        await juliet.SendAsync("<message to='romeo@localhost/browser' type='chat' id='m2'><body>And back</body></message>");
        var back = await ws.ReceiveAsync(e => e.Name == "message");
        Assert.That(back.Namespace, Is.EqualTo(Ns.Client), "each message declares jabber:client itself");
        Assert.That(back.ChildText("body", Ns.Client), Is.EqualTo("And back"));
    }

    [Test]
    public async Task Close_is_answered_with_close_and_the_session_ends()
    {
        await using var server = await Server();
        await using var ws = await WebSocketTestClient.ConnectAsync(server, "romeo", "pw-romeo", "browser");
        await ws.SendAsync("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
        var close = await ws.ReceiveAsync();
        Assert.That(close.Is("close", Ns.Framing), close.ToString());
        Assert.That(await ws.ReceiveTextAsync(), Is.Null, "the server closes the WebSocket after <close/>");
        var directory = server.Get<Xmpp.Server.Sessions.ISessionDirectory>();
        Assert.That(await Wait.UntilAsync(() => directory.Get(Jid.Parse("romeo@localhost")).Count == 0), Is.True);
    }

    [Test]
    public async Task A_stream_header_instead_of_open_gets_invalid_namespace_and_close()
    {
        await using var server = await Server();
        await using var ws = await WebSocketTestClient.ConnectRawAsync(server);
        await ws.SendAsync("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
        var open = await ws.ReceiveAsync();
        Assert.That(open.Is("open", Ns.Framing), open.ToString());
        var error = await ws.ReceiveAsync();
        Assert.That(error.Is("error", Ns.Streams) && error.Child("invalid-namespace", Ns.StreamErrors) is not null, error.ToString());
        var close = await ws.ReceiveAsync();
        Assert.That(close.Is("close", Ns.Framing), close.ToString());
    }

    [Test]
    public async Task A_message_holding_half_an_element_is_not_well_formed()
    {
        await using var server = await Server();
        await using var ws = await WebSocketTestClient.ConnectRawAsync(server);
        await ws.OpenAsync(server.Domain);
        await ws.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>");
        var error = await ws.ReceiveAsync();
        Assert.That(error.Child("not-well-formed", Ns.StreamErrors), Is.Not.Null, error.ToString());
        Assert.That((await ws.ReceiveAsync()).Is("close", Ns.Framing));
    }

    [Test]
    public async Task A_message_above_the_stanza_limit_is_a_policy_violation()
    {
        await using var server = await Server(o => o["Xmpp:Limits:MaxStanzaBytes"] = "20000");
        await using var ws = await WebSocketTestClient.ConnectAsync(server, "romeo", "pw-romeo");
        await ws.SendAsync($"<message xmlns='jabber:client' to='juliet@localhost'><body>{new string('x', 30000)}</body></message>");
        var error = await ws.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child("policy-violation", Ns.StreamErrors), Is.Not.Null, error.ToString());
    }

    [Test]
    public async Task Wrong_password_over_websocket_is_not_authorized()
    {
        await using var server = await Server();
        await using var ws = await WebSocketTestClient.ConnectRawAsync(server);
        await ws.OpenAsync(server.Domain);
        var ex = Assert.ThrowsAsync<AuthenticationFailedException>(() => ws.AuthenticateAsync("romeo", "wrong", server.Domain));
        Assert.That(ex!.Condition, Is.EqualTo("not-authorized"));
    }

    [Test]
    public async Task A_handshake_without_the_xmpp_subprotocol_is_refused()
    {
        await using var server = await Server();
        var ex = Assert.ThrowsAsync<WebSocketException>(() => WebSocketTestClient.ConnectRawAsync(server, subprotocol: null));
        Assert.That(ex!.Message, Does.Contain("400"));
    }

    [Test]
    public async Task An_origin_outside_the_allowed_list_is_refused_and_a_listed_one_accepted()
    {
        await using var server = await Server(o => o["Xmpp:Http:AllowedOrigins:0"] = "https://chat.example.org");
        var ex = Assert.ThrowsAsync<WebSocketException>(() => WebSocketTestClient.ConnectRawAsync(server, origin: "https://evil.example.com"));
        Assert.That(ex!.Message, Does.Contain("403"));
        await using var ok = await WebSocketTestClient.ConnectRawAsync(server, origin: "https://chat.example.org");
        var open = await ok.OpenAsync(server.Domain);
        Assert.That(open.Is("open", Ns.Framing));
    }

    [Test]
    public async Task Stream_management_over_websocket_resumes_on_a_new_socket_with_the_missed_message()
    {
        await using var server = await Server();
        var first = await WebSocketTestClient.ConnectAsync(server, "romeo", "pw-romeo", "browser");
        await first.SendAsync("<presence xmlns='jabber:client'/>");
        await first.SendAsync("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        var enabled = await first.ReceiveAsync(e => e.Is("enabled", Ns.StreamManagement));
        var previd = enabled.Attr("id")!;
        first.Abort(); // the tab's network goes away without <close/>
        await first.DisposeAsync();

        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "pw-juliet", "phone");
        var directory = server.Get<Xmpp.Server.Sessions.ISessionDirectory>();
        await juliet.SendAsync("<message to='romeo@localhost/browser' type='chat' id='gap'><body>While you were away</body></message>");

        await using var second = await WebSocketTestClient.ConnectRawAsync(server);
        await second.OpenAsync(server.Domain);
        await second.AuthenticateAsync("romeo", "pw-romeo", server.Domain);
        await second.SendAsync($"<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='0'/>");
        var resumed = await second.ReceiveAsync();
        Assert.That(resumed.Is("resumed", Ns.StreamManagement), resumed.ToString());
        var missed = await second.ReceiveAsync(e => e.Name == "message");
        Assert.That(missed.ChildText("body", Ns.Client), Is.EqualTo("While you were away"));
        Assert.That(directory.Get(Jid.Parse("romeo@localhost")).Count, Is.EqualTo(1));
    }

    [Test]
    public async Task A_plain_http_get_on_the_websocket_path_asks_for_an_upgrade()
    {
        await using var server = await Server();
        using var http = UploadClient.Http(server);
        using var response = await http.GetAsync($"https://127.0.0.1:{server.HttpPort}/xmpp-websocket");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.UpgradeRequired));
    }
}

/// XEP-0156 discovery on the HTTPS endpoint.
[TestFixture]
public sealed class HostMetaTests
{
    [Test]
    public async Task Host_meta_in_xrd_and_json_lists_the_websocket_and_bosh_urls_for_any_origin()
    {
        await using var server = await TestServer.StartAsync(configure: TestServer.WithHttp);
        using var http = UploadClient.Http(server);
        var baseUrl = $"https://127.0.0.1:{server.HttpPort}";

        using var xrd = await http.GetAsync(baseUrl + "/.well-known/host-meta");
        Assert.That(xrd.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(xrd.Headers.GetValues("Access-Control-Allow-Origin"), Is.EqualTo(new[] { "*" }));
        var doc = System.Xml.Linq.XDocument.Parse(await xrd.Content.ReadAsStringAsync());
        System.Xml.Linq.XNamespace ns = "http://docs.oasis-open.org/ns/xri/xrd-1.0";
        var links = doc.Root!.Elements(ns + "Link").ToDictionary(l => (string)l.Attribute("rel")!, l => (string)l.Attribute("href")!);
        Assert.That(links["urn:xmpp:alt-connections:websocket"], Is.EqualTo($"wss://127.0.0.1:{server.HttpPort}/xmpp-websocket"));
        Assert.That(links["urn:xmpp:alt-connections:xbosh"], Is.EqualTo($"https://127.0.0.1:{server.HttpPort}/http-bind"));

        using var json = await http.GetAsync(baseUrl + "/.well-known/host-meta.json");
        Assert.That(json.Content.Headers.ContentType!.MediaType, Is.EqualTo("application/json"));
        Assert.That(json.Headers.GetValues("Access-Control-Allow-Origin"), Is.EqualTo(new[] { "*" }));
        using var parsed = System.Text.Json.JsonDocument.Parse(await json.Content.ReadAsStringAsync());
        var hrefs = parsed.RootElement.GetProperty("links").EnumerateArray().ToDictionary(l => l.GetProperty("rel").GetString()!, l => l.GetProperty("href").GetString()!);
        Assert.That(hrefs["urn:xmpp:alt-connections:websocket"], Is.EqualTo($"wss://127.0.0.1:{server.HttpPort}/xmpp-websocket"));
    }

    [Test]
    public async Task A_public_url_and_a_disabled_transport_change_what_host_meta_lists()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:Http:PublicUrl"] = "https://xmpp.example.org/";
            o["Xmpp:Http:Bosh"] = "false";
        });
        using var http = UploadClient.Http(server);
        var body = await http.GetStringAsync($"https://127.0.0.1:{server.HttpPort}/.well-known/host-meta.json");
        Assert.That(body, Does.Contain("wss://xmpp.example.org/xmpp-websocket"));
        Assert.That(body, Does.Not.Contain("xbosh"));
        using var other = await http.GetAsync($"https://127.0.0.1:{server.HttpPort}/.well-known/other");
        Assert.That(other.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }
}
