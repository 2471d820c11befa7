using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// xmpp.js 0.14 (@xmpp/client, the browser-side library, run by node) against a TCP client on the other end, over our
/// WebSocket endpoint and over TCP with STARTTLS. It prefers XEP-0388 SASL2 with XEP-0386 Bind 2 when offered, so
/// this is the login a browser client really does here. ./test.sh installs it with `npm ci` in Interop/xmppjs.
[TestFixture]
public sealed class XmppJsInteropTests
{
    [TestCase("websocket")]
    [TestCase("tcp")]
    public async Task Xmppjs_logs_in_with_sasl2_and_bind2_and_exchanges_a_message_with_a_tcp_client(string transport)
    {
        await using var server = await TestServer.StartAsync(configure: TestServer.WithHttp);
        await server.AddUserAsync("romeo", "pw-romeo");
        await server.AddUserAsync("juliet", "pw-juliet");
        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "pw-juliet", "phone", sendPresence: true);

        var service = transport == "tcp" ? XmppJs.TcpService(server) : XmppJs.WebSocketService(server);
        using var js = XmppJs.Start(service, server, "romeo", "pw-romeo", "juliet@localhost/phone",
            "hello from the browser", "hello from tcp");
        var jid = await XmppJs.ChatAsync(js, juliet, "hello from the browser", "hello from tcp");
        // XEP-0386 §3.2: the resource is "<tag>/<random>", the tag being the resource xmpp.js was given.
        Assert.That(jid, Does.Match("^romeo@localhost/xmppjs/[0-9a-f]+$"), js.Describe());

        // What it negotiated, from its own trace: one SASL2 exchange with the one SCRAM it implements, Bind 2 inline
        // with stream management enabled in the same round trip, and no RFC 6120 SASL or resource binding at all.
        var sent = XmppJs.Sent(js);
        var authenticate = XmppJs.Authentications(js).Single();
        Assert.That(authenticate.Attribute("mechanism")?.Value, Is.EqualTo("SCRAM-SHA-1"), js.Describe());
        var bind = authenticate.Element(XmppJs.Bind2 + "bind");
        Assert.That(bind?.Element(XmppJs.Bind2 + "tag")?.Value, Is.EqualTo("xmppjs"), js.Describe());
        Assert.That(bind!.Element(XmppJs.Sm + "enable"), Is.Not.Null, "xmpp.js asks for XEP-0198 inline in Bind 2");
        Assert.That(sent.Any(e => e.Name.NamespaceName == "urn:ietf:params:xml:ns:xmpp-sasl"
            || e.Descendants().Any(d => d.Name.NamespaceName == "urn:ietf:params:xml:ns:xmpp-bind")), Is.False, js.Describe());

        var success = XmppJs.Received(js).Single(e => e.Name == XmppJs.Sasl2 + "success");
        Assert.That(success.Element(XmppJs.Sasl2 + "authorization-identifier")?.Value, Is.EqualTo(jid));
        var bound = success.Element(XmppJs.Bind2 + "bound");
        Assert.That(bound?.Element(XmppJs.Sm + "enabled")?.Attribute("resume")?.Value, Is.EqualTo("true"), success.ToString());
        Assert.That(ClientProcess.Flag(js.EventsNamed("received")[0], "sm"), Is.True, "xmpp.js took stream management as enabled\n" + js.Describe());
    }
}
