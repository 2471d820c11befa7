using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// XEP-0114 over real TCP: a bridge at bridge.localhost connects with its secret, and alice@localhost talks to it.
[TestFixture, Category("Components")]
public sealed class ComponentTests
{
    private const string Bridge = "bridge.localhost";
    private const string Secret = "s3cret-for-the-bridge";
    private TestServer _server = null!;
    private int _port;

    [OneTimeSetUp]
    public async Task Start()
    {
        _port = TestServer.FreePort();
        _server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Components:Enabled"] = "true";
            o["Xmpp:Components:Port"] = _port.ToString();
            o[$"Xmpp:Components:Domains:{Bridge}:Secret"] = Secret;
            o[$"Xmpp:Components:Domains:{Bridge}:Name"] = "Test bridge";
            o["Xmpp:Components:Domains:other.localhost:Secret"] = "other-secret";
            o["Xmpp:Components:MaxStanzaBytes"] = "20000";
        });
        await _server.AddUserAsync("alice", "alice-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private async Task<TestClient> Alice(string resource)
    {
        var c = await TestClient.ConnectAsync(_server, "alice", "alice-pw", resource);
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    [Test]
    public async Task A_component_exchanges_messages_and_iqs_with_a_local_user_both_ways()
    {
        await using var bridge = await TestComponent.ConnectAsync(_port, Bridge, Secret);
        await using var alice = await Alice("laptop");

        // Alice → a JID at the bridge: the component gets it with alice's full JID as sender.
        await alice.SendAsync($"<message to='romeo@{Bridge}' type='chat' id='a1'><body>Hello bridge</body></message>");
        var toBridge = await bridge.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "a1");
        Assert.That(toBridge.Attr("from"), Is.EqualTo("alice@localhost/laptop"));
        Assert.That(toBridge.Attr("to"), Is.EqualTo($"romeo@{Bridge}"));
        Assert.That(toBridge.ChildText("body", Ns.ComponentAccept), Is.EqualTo("Hello bridge"));

        // The bridge → alice's bare JID, from a puppet JID at its domain.
        await bridge.SendAsync($"<message from='romeo@{Bridge}/irc' to='alice@localhost' type='chat' id='b1'><body>Hello alice</body></message>");
        var toAlice = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "b1");
        Assert.That(toAlice.Attr("from"), Is.EqualTo($"romeo@{Bridge}/irc"));
        Assert.That(toAlice.ChildText("body", Ns.Client), Is.EqualTo("Hello alice"));

        // Alice asks the bridge itself (disco#info); the component answers.
        var ask = alice.IqAsync($"<iq type='get' to='{Bridge}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var query = await bridge.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get");
        Assert.That(query.Attr("from"), Is.EqualTo("alice@localhost/laptop"));
        await bridge.SendAsync($"<iq type='result' from='{Bridge}' to='{query.Attr("from")}' id='{query.Attr("id")}'>" +
                               "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='gateway' type='irc' name='IRC'/></query></iq>");
        var answer = await ask;
        Assert.That(answer.Attr("type"), Is.EqualTo("result"), answer.ToString());
        Assert.That(answer.Child("query", Ns.DiscoInfo)!.Child("identity", Ns.DiscoInfo)!.Attr("type"), Is.EqualTo("irc"));

        // The bridge asks the server (ping, no 'from': the component's domain is stamped) and alice's client (version).
        await bridge.SendAsync($"<iq type='get' to='localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
        var pong = await bridge.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "p1");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        Assert.That(pong.Attr("to"), Is.EqualTo(Bridge));
        await bridge.SendAsync($"<iq type='get' from='{Bridge}' to='alice@localhost/laptop' id='v1'><query xmlns='jabber:iq:version'/></iq>");
        var version = await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "v1");
        Assert.That(version.Attr("from"), Is.EqualTo(Bridge));
        await alice.SendAsync($"<iq type='result' to='{Bridge}' id='v1'><query xmlns='jabber:iq:version'><name>test</name></query></iq>");
        var versionAnswer = await bridge.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "v1");
        Assert.That(versionAnswer.Attr("type"), Is.EqualTo("result"));
        Assert.That(versionAnswer.Attr("from"), Is.EqualTo("alice@localhost/laptop"));
    }

    [Test]
    public async Task A_wrong_secret_is_refused_with_not_authorized_and_the_stream_closes()
    {
        var (component, answer) = await TestComponent.TryConnectAsync(_port, Bridge, "not-the-secret");
        await using var _ = component;
        Assert.That(answer.Is("error", Ns.Streams), answer.ToString());
        Assert.That(answer.FirstElement!.Name, Is.EqualTo("not-authorized"));
        Assert.That(await component.Connection.ReadStreamErrorAsync(), Is.Null, "the stream ends after the error");
        // The domain stays free for the real component.
        await using var real = await TestComponent.ConnectAsync(_port, Bridge, Secret);
    }

    [Test]
    public async Task An_unknown_domain_gets_host_unknown()
    {
        var (component, answer) = await TestComponent.TryConnectAsync(_port, "nobody.localhost", Secret);
        await using var _ = component;
        Assert.That(answer.Is("error", Ns.Streams) && answer.FirstElement!.Name == "host-unknown", answer.ToString());
    }

    [Test]
    public async Task A_second_connection_for_a_connected_domain_gets_conflict_and_the_first_keeps_working()
    {
        await using var first = await TestComponent.ConnectAsync(_port, "other.localhost", "other-secret");
        var (second, answer) = await TestComponent.TryConnectAsync(_port, "other.localhost", "other-secret");
        await using var _ = second;
        Assert.That(answer.Is("error", Ns.Streams) && answer.FirstElement!.Name == "conflict", answer.ToString());
        await first.SendAsync("<iq type='get' from='other.localhost' to='localhost' id='still'><ping xmlns='urn:xmpp:ping'/></iq>");
        var pong = await first.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "still");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task A_spoofed_from_ends_the_stream_with_invalid_from_and_is_not_delivered()
    {
        await using var alice = await Alice("spoof");
        await using var bridge = await TestComponent.ConnectAsync(_port, Bridge, Secret);
        await bridge.SendAsync("<message from='admin@localhost' to='alice@localhost' type='chat' id='forged'><body>trust me</body></message>");
        var error = await bridge.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement!.Name, Is.EqualTo("invalid-from"));
        Assert.That(await alice.TryReceiveAsync(e => e.Attr("id") == "forged", TimeSpan.FromMilliseconds(500)), Is.Null);
    }

    [Test]
    public async Task An_oversized_stanza_from_a_component_ends_its_stream_with_policy_violation()
    {
        await using var bridge = await TestComponent.ConnectAsync(_port, Bridge, Secret);
        await bridge.SendAsync($"<message from='{Bridge}' to='alice@localhost'><body>{new string('x', 30_000)}</body></message>");
        var error = await bridge.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement!.Name, Is.EqualTo("policy-violation"));
    }

    [Test]
    public async Task A_component_that_stops_answering_pings_is_closed_and_its_domain_freed()
    {
        int port = TestServer.FreePort();
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Components:Enabled"] = "true";
            o["Xmpp:Components:Port"] = port.ToString();
            o["Xmpp:Components:Domains:a.localhost:Secret"] = "a";
            o["Xmpp:Components:Domains:b.localhost:Secret"] = "b";
            o["Xmpp:Components:PingIntervalSeconds"] = "1";
            o["Xmpp:Components:PingTimeoutSeconds"] = "1";
        });
        await using var silent = await TestComponent.ConnectAsync(port, "a.localhost", "a");
        await using var alive = await TestComponent.ConnectAsync(port, "b.localhost", "b");
        var answering = Task.Run(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                var ping = await alive.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get" && e.Child("ping", "urn:xmpp:ping") is not null, TimeSpan.FromSeconds(10));
                // Answered with an error: any answer shows the component is alive.
                await alive.SendAsync($"<iq type='error' from='b.localhost' to='{ping.Attr("from")}' id='{ping.Attr("id")}'>" +
                                      "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
            }
        });
        var ping = await silent.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "get", TimeSpan.FromSeconds(10));
        Assert.That(ping.Child("ping", "urn:xmpp:ping"), Is.Not.Null, ping.ToString());
        var error = await silent.ReceiveAsync(e => e.Is("error", Ns.Streams), TimeSpan.FromSeconds(10));
        Assert.That(error.FirstElement!.Name, Is.EqualTo("connection-timeout"));
        await answering;
        var links = server.Get<Xmpp.Server.Links.Components.ComponentLinks>();
        Assert.That(links.IsConnected("b.localhost"), "the component that answered keeps its link");
        Assert.That(await Wait.UntilAsync(() => !links.IsConnected("a.localhost")));
        await using var successor = await TestComponent.ConnectAsync(port, "a.localhost", "a");
    }

    [Test]
    public async Task A_component_above_its_read_rate_is_slowed_down_not_dropped()
    {
        int port = TestServer.FreePort();
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Components:Enabled"] = "true";
            o["Xmpp:Components:Port"] = port.ToString();
            o["Xmpp:Components:Domains:slow.localhost:Secret"] = "s";
            o["Xmpp:Components:MaxStanzaBytes"] = "10000";
            o["Xmpp:Components:ReadBytesPerSecond"] = "20000";
            o["Xmpp:Components:ReadBurstBytes"] = "10000";
        });
        await using var component = await TestComponent.ConnectAsync(port, "slow.localhost", "s");
        var filler = new string('x', 5000);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        // About 60 KB at 20 KB/s after a 10 KB burst: the last ping is read no sooner than about 2.5 s later.
        for (int i = 0; i < 12; i++)
            await component.SendAsync($"<message from='slow.localhost' to='nobody@slow.localhost' type='headline'><body>{filler}</body></message>");
        await component.SendAsync("<iq type='get' from='slow.localhost' to='localhost' id='last'><ping xmlns='urn:xmpp:ping'/></iq>");
        var pong = await component.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "last", TimeSpan.FromSeconds(20));
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        Assert.That(watch.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(2)), "the bytes were read at the configured rate");
        Assert.That(component.Connection.StreamEnded, Is.False);
    }

    [Test]
    public async Task Server_disco_items_list_the_component_domains()
    {
        await using var alice = await Alice("disco");
        var items = await alice.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        var listed = items.Child("query", Ns.DiscoItems)!.Elements("item", Ns.DiscoItems).ToDictionary(i => i.Attr("jid")!, i => i.Attr("name"));
        Assert.That(listed, Does.ContainKey(Bridge));
        Assert.That(listed[Bridge], Is.EqualTo("Test bridge"));
        Assert.That(listed, Does.ContainKey("other.localhost"));
    }

    [Test]
    public async Task Stanzas_for_a_component_that_is_not_connected_get_service_unavailable()
    {
        await using var alice = await Alice("offline");
        // Wait until no earlier test's bridge is attached.
        Assert.That(await Wait.UntilAsync(() => !_server.Get<Xmpp.Server.Links.Components.ComponentLinks>().IsConnected(Bridge), TimeSpan.FromSeconds(10)));
        await alice.SendAsync($"<message to='juliet@{Bridge}' type='chat' id='gone1'><body>anyone?</body></message>");
        var bounced = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "gone1");
        Assert.That(bounced.Attr("type"), Is.EqualTo("error"));
        Assert.That(bounced.Child("error", Ns.Client)!.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null, bounced.ToString());
        var iq = await alice.IqAsync($"<iq type='get' to='{Bridge}'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(iq.Attr("type"), Is.EqualTo("error"));
        Assert.That(iq.Child("error", Ns.Client)!.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null);
    }
}
