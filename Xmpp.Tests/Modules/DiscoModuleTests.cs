using Xmpp.Protocol;
using Xmpp.Server.Modules;
using Xmpp.Server.Modules.Disco;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

[TestFixture]
public sealed class DiscoModuleTests
{
    private TestServer _server = null!;
    private TestClient _client = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await _server.AddUserAsync("alice", "alice-pw");
        await _server.AddUserAsync("bob", "bob-pw");
        _client = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "disco");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _client.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Test]
    public async Task Server_info_lists_identity_and_exactly_the_registered_features()
    {
        var reply = await _client.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var query = reply.Child("query", Ns.DiscoInfo)!;
        Assert.That(X.Matches(query, "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im'/></query>"));
        var features = query.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
        var registry = _server.Get<ModuleRegistry>();
        Assert.That(features, Is.EquivalentTo(registry.ServerFeatures));
        Assert.That(features, Does.Contain(Ns.Ping).And.Contain(Ns.Time).And.Contain(Ns.Version).And.Contain(Ns.Offline));
        Assert.That(features, Does.Contain(Ns.DiscoInfo).And.Contain(Ns.DiscoItems).And.Contain(Ns.Register));
    }

    [Test]
    public void Every_announced_feature_is_backed_by_a_handler_or_a_documented_behaviour()
    {
        var registry = _server.Get<ModuleRegistry>();
        // Features that are IQ namespaces must have a handler; the rest are routing behaviours owned by a module.
        // XEP-0377 reports ride on the XEP-0191 block command, which has its handler.
        var behaviours = new HashSet<string> { Ns.Offline, Ns.DiscoItems, "jabber:iq:roster", "urn:xmpp:features:rosterver", Ns.Reporting };
        foreach (var feature in registry.ServerFeatures)
            Assert.That(registry.HasIqNamespace(feature) || behaviours.Contains(feature), $"{feature} is announced but nothing implements it");
    }

    [Test]
    public async Task Caps_ver_in_stream_features_verifies_against_disco_info()
    {
        await using var c = await TestClient.OpenAsync(_server);
        await c.AuthenticateAsync("bob", "bob-pw");
        var caps = c.Features!.Child("c", Ns.Caps)!;
        var registry = _server.Get<ModuleRegistry>();
        Assert.That(caps.Attr("ver"), Is.EqualTo(DiscoModule.ComputeVer(registry.Identities, registry.ServerFeatures)));
        await c.BindAsync("caps");
        c.StartReading();
        var reply = await c.IqAsync($"<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='{caps.Attr("node")}#{caps.Attr("ver")}'/></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"));
        var query = reply.Child("query", Ns.DiscoInfo)!;
        var identities = query.Elements("identity", Ns.DiscoInfo).Select(i => (i.Attr("category")!, i.Attr("type")!, i.Attr("name") ?? ""));
        var features = query.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")!);
        Assert.That(DiscoModule.ComputeVer(identities, features), Is.EqualTo(caps.Attr("ver")));
    }

    [Test]
    public void Caps_ver_matches_the_xep_0115_worked_example()
    {
        // XEP-0115 §5.2 simple generation example.
        var ver = DiscoModule.ComputeVer([("client", "pc", "Exodus 0.9.1")],
            ["http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc"]);
        Assert.That(ver, Is.EqualTo("QgayPKawpkPSDYmwT/WM94uAlu0="));
    }

    [Test]
    public async Task Items_of_the_server_are_exactly_the_hosted_services()
    {
        var reply = await _client.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"));
        var items = reply.Child("query", Ns.DiscoItems)!.Elements().Select(e => e.Attr("jid")).ToList();
        Assert.That(items, Is.EquivalentTo(_server.Get<ModuleRegistry>().ServicesOf("localhost").Select(s => s.Domain)));
        Assert.That(items, Is.EqualTo(new[] { "conference.localhost" }));
    }

    [Test]
    public async Task Info_of_an_account_shows_a_registered_account()
    {
        var reply = await _client.IqAsync("<iq type='get' to='bob@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(reply, "<iq type='result' from='bob@localhost'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='account' type='registered'/></query></iq>"), reply.ToString());
    }

    [Test]
    public async Task Unknown_node_is_item_not_found()
    {
        var reply = await _client.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>");
        Assert.That(reply.Child("error", Ns.Client)?.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null);
    }

    [Test]
    public async Task Ping_time_and_version_answer()
    {
        var pong = await _client.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
        var selfPing = await _client.IqAsync("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(selfPing.Attr("type"), Is.EqualTo("result"));

        var time = await _client.IqAsync("<iq type='get' to='localhost'><time xmlns='urn:xmpp:time'/></iq>");
        var utc = DateTimeOffset.Parse(time.Child("time", Ns.Time)!.ChildText("utc", Ns.Time)!);
        Assert.That((DateTimeOffset.UtcNow - utc).Duration(), Is.LessThan(TimeSpan.FromMinutes(1)));
        Assert.That(time.Child("time", Ns.Time)!.ChildText("tzo", Ns.Time), Is.EqualTo("+00:00"));

        var version = await _client.IqAsync("<iq type='get' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(version.Child("query", Ns.Version)!.ChildText("name", Ns.Version), Is.EqualTo("xmppd"));
        Assert.That(version.Child("query", Ns.Version)!.ChildText("version", Ns.Version), Is.Not.Empty);
    }

    [Test]
    public async Task Ping_set_is_bad_request()
    {
        var reply = await _client.IqAsync("<iq type='set' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(reply.Child("error", Ns.Client)?.Child("bad-request", Ns.StanzaErrors), Is.Not.Null);
    }
}
