using Xmpp.Protocol;
using Xmpp.Server.Auth;
using Xmpp.Server.Modules.Push;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0357: enable and disable are stored per account and survive a restart; the feature is announced on the account.
[TestFixture]
public sealed class PushModuleTests
{
    private const string Form =
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
        "<field var='secret'><value>eruio234vzxc2kla-91</value></field></x>";

    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await _server.AddUserAsync("alice", "alice-pw");
        await _server.AddUserAsync("bob", "bob-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private Task<IReadOnlyList<PushRegistration>> Stored(string user, TestServer? server = null) =>
        (server ?? _server).Get<PushRegistrations>().GetAsync(user).AsTask();

    [Test]
    public async Task Push_is_advertised_on_the_account_and_not_on_the_server()
    {
        // §4.1: the account's bare JID says the server can publish for it; PushNotificationTests show that it does.
        await using var c = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "disco");
        foreach (var (to, expected) in new[] { ("localhost", false), ("alice@localhost", true) })
        {
            var info = await c.IqAsync($"<iq type='get' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
            var features = info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
            Assert.That(features.Contains(Ns.Push), Is.EqualTo(expected), to);
        }
    }

    [Test]
    public async Task Push_is_not_advertised_when_publishing_is_off()
    {
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:Push:Enabled"] = "false");
        await server.AddUserAsync("carol", "carol-pw");
        await using var c = await TestClient.ConnectAsync(server, "carol", "carol-pw", "disco");
        var info = await c.IqAsync("<iq type='get' to='carol@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")), Does.Not.Contain(Ns.Push));
    }

    [Test]
    public async Task Enable_with_publish_options_is_stored_and_disable_by_node_removes_only_that_node()
    {
        await using var c = await TestClient.ConnectAsync(_server, "bob", "bob-pw", "phone");
        var one = await c.IqAsync($"<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='n1'>{Form}</enable></iq>");
        Assert.That(one.Attr("type"), Is.EqualTo("result"), one.ToString());
        var two = await c.IqAsync("<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='n2'/></iq>");
        Assert.That(two.Attr("type"), Is.EqualTo("result"));
        var stored = await Stored("bob");
        Assert.That(stored.Select(r => r.Node), Is.EquivalentTo(new[] { "n1", "n2" }));
        Assert.That(stored.Single(r => r.Node == "n1").PublishOptions["secret"], Is.EqualTo(new[] { "eruio234vzxc2kla-91" }));

        var off = await c.IqAsync("<iq type='set'><disable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='n1'/></iq>");
        Assert.That(off.Attr("type"), Is.EqualTo("result"));
        Assert.That((await Stored("bob")).Select(r => r.Node), Is.EqualTo(new[] { "n2" }));
        await c.IqAsync("<iq type='set'><disable xmlns='urn:xmpp:push:0' jid='push-5.client.example'/></iq>");
        Assert.That(await Stored("bob"), Is.Empty, "§6: without node every entry of the service goes");
    }

    [Test]
    public async Task Enabling_the_same_service_and_node_again_replaces_its_options()
    {
        await using var c = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "replace");
        await c.IqAsync($"<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='same'>{Form}</enable></iq>");
        await c.IqAsync("<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='same'/></iq>");
        var stored = (await Stored("alice")).Where(r => r.Jid == "p.example").ToList();
        Assert.That(stored, Has.Count.EqualTo(1));
        Assert.That(stored[0].PublishOptions, Is.Empty);
    }

    [TestCase("<enable xmlns='urn:xmpp:push:0' node='n'/>", "bad-request")]
    [TestCase("<enable xmlns='urn:xmpp:push:0' jid='a@@b' node='n'/>", "jid-malformed")]
    [TestCase("<enable xmlns='urn:xmpp:push:0' jid='p.example' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>", "bad-request")]
    [TestCase("<enable xmlns='urn:xmpp:push:0' jid='p.example' node='n'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field></x></enable>", "bad-request")]
    [TestCase("<disable xmlns='urn:xmpp:push:0'/>", "bad-request")]
    public async Task Malformed_requests_get_the_spec_error(string payload, string condition)
    {
        await using var c = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "bad");
        var reply = await c.IqAsync($"<iq type='set'>{payload}</iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("error"));
        Assert.That(reply.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo(condition), reply.ToString());
    }

    [Test]
    public async Task Oversized_publish_options_are_not_acceptable()
    {
        await using var c = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "big");
        var big = new string('x', PushModule.MaxOptionChars + 1);
        var reply = await c.IqAsync($"<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='big'><x xmlns='jabber:x:data' type='submit'>" +
            $"<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>{big}</value></field></x></enable></iq>");
        Assert.That(reply.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo(StanzaErrors.NotAcceptable));
    }

    [Test]
    public async Task An_account_may_enable_at_most_the_limit_of_services()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("carol", "carol-pw");
        await using var c = await TestClient.ConnectAsync(server, "carol", "carol-pw", "many");
        for (int i = 0; i < PushModule.MaxPerAccount; i++)
            Assert.That((await c.IqAsync($"<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='n{i}'/></iq>")).Attr("type"), Is.EqualTo("result"));
        var over = await c.IqAsync("<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='one-too-many'/></iq>");
        Assert.That(over.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo(StanzaErrors.ResourceConstraint));
        var again = await c.IqAsync("<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='p.example' node='n0'/></iq>");
        Assert.That(again.Attr("type"), Is.EqualTo("result"), "re-enabling an existing entry is not a new one");
    }

    [Test]
    public async Task Registrations_survive_a_restart_and_go_with_the_account()
    {
        var root = Path.Combine(Path.GetTempPath(), "xmpp-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var first = await TestServer.StartAsync(root))
            {
                await first.AddUserAsync("dora", "dora-pw");
                await using var c = await TestClient.ConnectAsync(first, "dora", "dora-pw", "phone");
                var r = await c.IqAsync($"<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='push.example' node='dn'>{Form}</enable></iq>");
                Assert.That(r.Attr("type"), Is.EqualTo("result"));
                await c.CloseAsync();
            }
            await using var second = await TestServer.StartAsync(root);
            var stored = await Stored("dora", second);
            Assert.That(stored.Single().Jid, Is.EqualTo("push.example"));
            Assert.That(stored.Single().PublishOptions["secret"], Is.EqualTo(new[] { "eruio234vzxc2kla-91" }));
            await second.Get<AccountService>().DeleteAsync("dora");
            Assert.That(await Stored("dora", second), Is.Empty);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
