using Xmpp.Protocol;
using Xmpp.Server.Modules.Push;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0357 across servers, as phones use it: alice@a.test registered the app server push.b.test, which is a
/// component of the other server. The notification crosses the server link to b.test, reaches the component there,
/// and the app server's answer comes back over the link to alice's bare JID.
[TestFixture, Category("Push")]
public sealed class PushOverS2sTests
{
    private const string AppServer = "push.b.test";
    private S2sPair _pair = null!;
    private int _componentPort;

    [OneTimeSetUp]
    public async Task Start()
    {
        _componentPort = TestServer.FreePort();
        _pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            if (domain == "b.test")
            {
                o["Xmpp:Components:Enabled"] = "true";
                o["Xmpp:Components:Port"] = _componentPort.ToString();
                o[$"Xmpp:Components:Domains:{AppServer}:Secret"] = "app-secret";
            }
            // The component's domain is found through the static peer map, as DNS would point it at b.test.
            if (domain == "a.test") o[$"Xmpp:S2s:Peers:{AppServer}"] = o["Xmpp:S2s:Peers:b.test"];
        });
        foreach (var u in new[] { "alice", "carol" }) await _pair.A.AddUserAsync(u, u + "-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _pair.DisposeAsync();

    [Test]
    public async Task A_notification_crosses_to_an_app_server_behind_another_server_and_its_answer_comes_back()
    {
        await using var app = await TestComponent.ConnectAsync(_componentPort, AppServer, "app-secret");
        await using (var setup = await TestClient.ConnectAsync(_pair.A, "alice", "alice-pw", "setup"))
        {
            var enabled = await setup.IqAsync($"<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='{AppServer}' node='remote-node'>" +
                "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
                "<field var='secret'><value>remote-secret</value></field></x></enable></iq>");
            Assert.That(enabled.Attr("type"), Is.EqualTo("result"));
            await setup.CloseAsync();
        }
        Assert.That(await Wait.UntilAsync(() => _pair.A.Get<Xmpp.Server.Sessions.ISessionDirectory>().Get(Jid.Parse("alice@a.test")).Count == 0));

        await using var carol = await TestClient.ConnectAsync(_pair.A, "carol", "carol-pw", "pc");
        await carol.SendAsync("<message to='alice@a.test' type='chat' id='x1'><body>wake up</body></message>");
        var iq = await app.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "set", TimeSpan.FromSeconds(30));
        Assert.That(iq.Attr("from"), Is.EqualTo("alice@a.test"));
        var publish = iq.Child("pubsub", Ns.PubSub)!.Child("publish", Ns.PubSub)!;
        Assert.That(publish.Attr("node"), Is.EqualTo("remote-node"));
        var secret = iq.Child("pubsub", Ns.PubSub)!.Child("publish-options", Ns.PubSub)!.Child("x", Ns.DataForms)!
            .Elements("field", Ns.DataForms).Single(f => f.Attr("var") == "secret").ChildText("value", Ns.DataForms);
        Assert.That(secret, Is.EqualTo("remote-secret"));

        var before = _pair.A.Get<PushNotifier>().Published;
        await app.SendAsync($"<iq type='result' from='{AppServer}' to='alice@a.test' id='{iq.Attr("id")}'/>");
        Assert.That(await Wait.UntilAsync(() => _pair.A.Get<PushNotifier>().Published == before + 1, TimeSpan.FromSeconds(30)),
            "the app server's answer came back over the link and completed the publish");
    }
}
