using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// XEP-0114 with a real third-party component implementation: slixmpp's ComponentXMPP (python3-slixmpp), the base of
/// bridges such as Slidge, driven by Interop/clients/slix_component.py.
[TestFixture]
[Category("Interop")]
public sealed class SlixmppComponentInteropTests
{
    private const string Gateway = "gw.localhost";
    private const string Secret = "slix-component-secret";
    private TestServer _server = null!;
    private int _port;

    [OneTimeSetUp]
    public async Task Start()
    {
        ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");
        _port = TestServer.FreePort();
        _server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Components:Enabled"] = "true";
            o["Xmpp:Components:Port"] = _port.ToString();
            o[$"Xmpp:Components:Domains:{Gateway}:Secret"] = Secret;
        });
        await _server.AddUserAsync("alice", "alice-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private ClientProcess StartComponent(string secret, params string[] extra) =>
        ClientProcess.Start(ClientProcess.DebianPython,
            [ClientProcess.ClientScript("slix_component.py"), "--jid", Gateway, "--secret", secret, "--host", "127.0.0.1",
             "--port", _port.ToString(), "--timeout", "20", .. extra],
            TimeSpan.FromSeconds(25));

    [Test]
    public async Task Slixmpp_component_connects_and_exchanges_messages_and_iqs_with_a_local_user()
    {
        await using var alice = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "pc");
        await alice.SendAsync("<presence/>");
        using var component = StartComponent(Secret, "--greet", "alice@localhost", "--ping", "localhost");
        await component.WaitForEventAsync("online", within: TimeSpan.FromSeconds(15));

        // The component greets alice from a JID at its domain, and pings the server (an IQ from the component).
        var greeting = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == $"bot@{Gateway}");
        Assert.That(greeting.ChildText("body", Ns.Client), Is.EqualTo("hello from the component"));
        await component.WaitForEventAsync("pong", within: TimeSpan.FromSeconds(15));

        // Alice writes to a JID at the gateway; the component gets it and echoes it back from that JID.
        await alice.SendAsync($"<message to='#chan@{Gateway}' type='chat' id='c1'><body>ping through the bridge</body></message>");
        var got = await component.WaitForEventAsync("message", e => ClientProcess.Text(e, "body") == "ping through the bridge");
        Assert.That(ClientProcess.Text(got, "from"), Is.EqualTo("alice@localhost/pc"));
        var echo = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "c1-echo");
        Assert.That(echo.Attr("from"), Is.EqualTo($"#chan@{Gateway}"));
        Assert.That(echo.ChildText("body", Ns.Client), Is.EqualTo("echo: ping through the bridge"));

        // Alice's disco#info to the gateway is answered by slixmpp's XEP-0030 plugin.
        var info = await alice.IqAsync($"<iq type='get' to='{Gateway}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Attr("type"), Is.EqualTo("result"), info.ToString());
        var identity = info.Child("query", Ns.DiscoInfo)!.Child("identity", Ns.DiscoInfo)!;
        Assert.That((identity.Attr("category"), identity.Attr("type")), Is.EqualTo(("gateway", "irc")));
    }

    [Test]
    public async Task Slixmpp_component_with_a_wrong_secret_is_refused()
    {
        using var component = StartComponent("not-the-secret");
        await component.WaitForEventAsync("disconnected", within: TimeSpan.FromSeconds(15));
        Assert.That(component.EventsNamed("online"), Is.Empty, component.Describe());
        Assert.That(component.EventsNamed("stream_error").Select(e => ClientProcess.Text(e, "condition")), Is.EqualTo(new[] { "not-authorized" }),
            component.Describe());
        Assert.That(_server.Get<Xmpp.Server.Links.Components.ComponentLinks>().IsConnected(Gateway), Is.False);
    }
}
