using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Push;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0357 end to end over real sockets: the app server stand-in is an XEP-0114 component at push.localhost (as
/// Conversations' p2.siacs.eu or Monal's app server would be reached over s2s), registered exactly as Conversations
/// registers (enable with a publish-options form carrying its 'secret'). Bob writes; the app server receives the
/// notification for a sleeping or offline account and nothing for an active one.
[TestFixture, Category("Push")]
public sealed class PushNotificationTests
{
    private const string AppServer = "push.localhost";
    private const string AppSecret = "app-server-secret";
    private TestServer _server = null!;
    private int _port;
    private TestComponent _app = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _port = TestServer.FreePort();
        _server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Components:Enabled"] = "true";
            o["Xmpp:Components:Port"] = _port.ToString();
            o[$"Xmpp:Components:Domains:{AppServer}:Secret"] = AppSecret;
            o["Xmpp:Push:MinIntervalSeconds"] = "1";
            o["Xmpp:Push:MaxErrors"] = "3";
            o["Xmpp:StreamManagement:ResumeTimeoutSeconds"] = "60";
        });
        foreach (var u in new[] { "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan" }) await _server.AddUserAsync(u, u + "-pw");
        _app = await TestComponent.ConnectAsync(_port, AppServer, AppSecret);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _app.DisposeAsync();
        await _server.DisposeAsync();
    }

    /// The enable Conversations sends (IqGenerator.enablePush): node and secret come from its app server.
    private static string ConversationsEnable(string node, string secret) =>
        $"<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='{AppServer}' node='{node}'>" +
        "<x xmlns='jabber:x:data' type='submit'>" +
        "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
        $"<field var='secret'><value>{secret}</value></field></x></enable></iq>";

    private async Task<TestClient> Online(string user, string resource = "phone")
    {
        var c = await TestClient.ConnectAsync(_server, user, user + "-pw", resource);
        await c.SendAsync("<presence/>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private async Task Register(string user, string node, string secret)
    {
        await using var c = await TestClient.ConnectAsync(_server, user, user + "-pw", "setup");
        var reply = await c.IqAsync(ConversationsEnable(node, secret));
        Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
        await c.CloseAsync();
        Assert.That(await Wait.UntilAsync(() => _server.Get<Xmpp.Server.Sessions.ISessionDirectory>().Get(Jid.Parse($"{user}@localhost")).Count == 0));
    }

    private Task<Element> Publish(string user, TimeSpan? timeout = null) =>
        _app.ReceiveAsync(e => e.Name == "iq" && e.Attr("from") == $"{user}@localhost", timeout ?? TimeSpan.FromSeconds(10));

    private static Dictionary<string, string> Fields(Element form) =>
        form.Elements("field", Ns.DataForms).ToDictionary(f => f.Attr("var")!, f => f.ChildText("value", Ns.DataForms) ?? "");

    private static (Element Publish, Dictionary<string, string> Summary, Dictionary<string, string>? Options) Parse(Element iq)
    {
        Assert.That(iq.Attr("type"), Is.EqualTo("set"));
        Assert.That(iq.Attr("to"), Is.EqualTo(AppServer));
        var pubsub = iq.Child("pubsub", Ns.PubSub)!;
        var publish = pubsub.Child("publish", Ns.PubSub)!;
        var form = publish.Child("item", Ns.PubSub)!.Child("notification", Ns.Push)!.Child("x", Ns.DataForms)!;
        var options = pubsub.Child("publish-options", Ns.PubSub)?.Child("x", Ns.DataForms);
        return (publish, Fields(form), options is null ? null : Fields(options));
    }

    private Task Answer(Element iq, string? errorCondition = null) => _app.SendAsync(errorCondition is null
        ? $"<iq type='result' from='{AppServer}' to='{iq.Attr("from")}' id='{iq.Attr("id")}'/>"
        : $"<iq type='error' from='{AppServer}' to='{iq.Attr("from")}' id='{iq.Attr("id")}'><error type='cancel'><{errorCondition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");

    [Test]
    public async Task An_offline_account_registered_like_Conversations_gets_a_notification_at_its_app_server()
    {
        await Register("alice", "alice-node", "alice-secret");
        await using var bob = await Online("bob", "laptop");
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='o1'><body>Are you there?</body></message>");

        var iq = await Publish("alice");
        var (publish, summary, options) = Parse(iq);
        Assert.That(publish.Attr("node"), Is.EqualTo("alice-node"));
        Assert.That(summary["FORM_TYPE"], Is.EqualTo(Ns.PushSummary));
        Assert.That(summary["message-count"], Is.EqualTo("1"));
        Assert.That(summary["last-message-sender"], Is.EqualTo("bob@localhost/laptop"));
        Assert.That(summary, Does.Not.ContainKey("last-message-body"), "the body stays on the server unless the operator allows it");
        Assert.That(options, Is.Not.Null);
        Assert.That(options!["FORM_TYPE"], Is.EqualTo(Ns.PubSubPublishOptions));
        Assert.That(options["secret"], Is.EqualTo("alice-secret"));
        await Answer(iq);

        // The message itself waits in the offline spool for the woken device.
        await using var alice = await Online("alice");
        var spooled = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "o1");
        Assert.That(spooled.ChildText("body", Ns.Client), Is.EqualTo("Are you there?"));
    }

    [Test]
    public async Task A_detached_session_gets_a_notification_and_messages_in_between_are_coalesced_into_the_next()
    {
        await Register("carol", "carol-node", "carol-secret");
        var carol = await Online("carol");
        await carol.SendAsync("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        await carol.ReceiveAsync(e => e.Name == "enabled");
        carol.Abort(); // the phone goes to sleep and loses its connection
        Assert.That(await Wait.UntilAsync(() => _server.Get<Xmpp.Server.Sessions.ISessionDirectory>().Get(Jid.Parse("carol@localhost"))
            .Entries.All(e => e.Sink.IsDetached) && _server.Get<Xmpp.Server.Sessions.ISessionDirectory>().Get(Jid.Parse("carol@localhost")).Count == 1));

        await using var bob = await Online("bob", "desk");
        await bob.SendAsync("<message to='carol@localhost' type='chat' id='d1'><body>one</body></message>");
        var first = await Publish("carol");
        Assert.That(Parse(first).Summary["message-count"], Is.EqualTo("1"));
        await Answer(first);

        // OMEMO-encrypted (no plaintext body) and a second message arrive within the interval: one notification, count 2.
        await bob.SendAsync("<message to='carol@localhost' type='chat' id='d2'><encrypted xmlns='eu.siacs.conversations.axolotl'>" +
                            "<header sid='1'><key rid='2'>a2V5</key><iv>aXY=</iv></header><payload>cGF5bG9hZA==</payload></encrypted></message>");
        await bob.SendAsync("<message to='carol@localhost' type='chat' id='d3'><body>three</body></message>");
        // A chat state alone is not worth waking the phone for.
        await bob.SendAsync("<message to='carol@localhost' type='chat' id='d4'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        var second = await Publish("carol");
        var summary = Parse(second).Summary;
        Assert.That(summary["message-count"], Is.EqualTo("2"), second.ToString());
        Assert.That(summary["last-message-sender"], Is.EqualTo("bob@localhost/desk"));
        await Answer(second);
        Assert.That(await _app.Connection.TryReceiveAsync(e => e.Name == "iq" && e.Attr("from") == "carol@localhost", TimeSpan.FromSeconds(1.5)), Is.Null);
    }

    [Test]
    public async Task A_message_the_device_never_acknowledged_notifies_when_its_session_detaches()
    {
        await Register("grace", "grace-node", "grace-secret");
        var grace = await Online("grace");
        await grace.SendAsync("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        await grace.ReceiveAsync(e => e.Name == "enabled");
        await using var bob = await Online("bob", "watch");
        // Written to a connection that looks alive, but the phone is already out of reach: no <a/> ever comes.
        await bob.SendAsync("<message to='grace@localhost' type='chat' id='g1'><body>did you get this?</body></message>");
        await grace.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "g1");
        Assert.That(await _app.Connection.TryReceiveAsync(e => e.Name == "iq" && e.Attr("from") == "grace@localhost", TimeSpan.FromMilliseconds(500)), Is.Null,
            "nothing while the session is active");
        grace.Abort();
        var iq = await Publish("grace");
        var summary = Parse(iq).Summary;
        Assert.That(summary["message-count"], Is.EqualTo("1"));
        Assert.That(summary["last-message-sender"], Is.EqualTo("bob@localhost/watch"));
        await Answer(iq);
    }

    [Test]
    public async Task A_groupchat_message_in_a_room_the_sleeping_user_is_in_notifies()
    {
        const string Room = "tea@conference.localhost";
        await Register("heidi", "heidi-node", "heidi-secret");
        var heidi = await Online("heidi");
        await heidi.SendAsync("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        await heidi.ReceiveAsync(e => e.Name == "enabled");
        await heidi.SendAsync($"<presence to='{Room}/heidi'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        await heidi.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == $"{Room}/heidi");
        var made = await heidi.IqAsync($"<iq type='set' to='{Room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
        Assert.That(made.Attr("type"), Is.EqualTo("result"), made.ToString());
        await using var bob = await Online("bob", "muc");
        await bob.SendAsync($"<presence to='{Room}/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == $"{Room}/bob");
        await heidi.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == $"{Room}/bob");
        heidi.Abort();
        Assert.That(await Wait.UntilAsync(() => _server.Get<Xmpp.Server.Sessions.ISessionDirectory>().Get(Jid.Parse("heidi@localhost"))
            .Entries.All(e => e.Sink.IsDetached)));

        await bob.SendAsync($"<message to='{Room}' type='groupchat' id='gc1'><body>anyone for tea?</body></message>");
        var iq = await Publish("heidi");
        var summary = Parse(iq).Summary;
        Assert.That(summary["message-count"], Is.EqualTo("1"));
        Assert.That(summary["last-message-sender"], Is.EqualTo($"{Room}/bob"));
        await Answer(iq);
    }

    [Test]
    public async Task Nothing_is_published_while_a_session_is_active()
    {
        await Register("dave", "dave-node", "dave-secret");
        await using var dave = await Online("dave");
        await using var bob = await Online("bob", "tablet");
        await bob.SendAsync("<message to='dave@localhost' type='chat' id='a1'><body>hi</body></message>");
        await dave.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "a1");
        Assert.That(await _app.Connection.TryReceiveAsync(e => e.Name == "iq" && e.Attr("from") == "dave@localhost", TimeSpan.FromSeconds(1.5)), Is.Null);
    }

    [Test]
    public async Task A_registration_is_disabled_after_repeated_errors_from_its_app_server()
    {
        await Register("erin", "erin-node", "erin-secret");
        await using var bob = await Online("bob", "pc");
        for (int i = 1; i <= 3; i++)
        {
            await bob.SendAsync($"<message to='erin@localhost' type='chat' id='e{i}'><body>try {i}</body></message>");
            var iq = await Publish("erin");
            await _app.SendAsync($"<iq type='error' from='{AppServer}' to='{iq.Attr("from")}' id='{iq.Attr("id")}'>" +
                                 "<error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
            if (i < 3)
            {
                await Task.Delay(100);
                Assert.That(await _server.Get<PushRegistrations>().GetAsync("erin"), Has.Count.EqualTo(1), $"still enabled after {i} errors");
                await Task.Delay(1000); // the next message would otherwise be coalesced
            }
        }
        Assert.That(await Wait.UntilAsync(async () => (await _server.Get<PushRegistrations>().GetAsync("erin")).Count == 0));
        await bob.SendAsync("<message to='erin@localhost' type='chat' id='e4'><body>still there?</body></message>");
        Assert.That(await _app.Connection.TryReceiveAsync(e => e.Name == "iq" && e.Attr("from") == "erin@localhost", TimeSpan.FromSeconds(1.5)), Is.Null);
    }

    [Test]
    public async Task A_forged_item_not_found_from_someone_else_does_not_disable_the_registration()
    {
        await Register("ivan", "ivan-node", "ivan-secret");
        await using var bob = await Online("bob", "forger");
        await bob.SendAsync("<message to='ivan@localhost' type='chat' id='i1'><body>hi ivan</body></message>");
        var iq = await Publish("ivan");
        // Bob saw nothing of the publish, but guesses its id and answers in the app server's place.
        await bob.SendAsync($"<iq type='error' to='ivan@localhost' id='{iq.Attr("id")}'><error type='cancel'>" +
                            "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        await bob.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await Task.Delay(300);
        Assert.That(await _server.Get<PushRegistrations>().GetAsync("ivan"), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task An_item_not_found_from_the_app_server_disables_the_registration_at_once()
    {
        await Register("frank", "frank-node", "frank-secret");
        await using var bob = await Online("bob", "mobile");
        await bob.SendAsync("<message to='frank@localhost' type='chat' id='f1'><body>hello</body></message>");
        var iq = await Publish("frank");
        await Answer(iq, "item-not-found");
        Assert.That(await Wait.UntilAsync(async () => (await _server.Get<PushRegistrations>().GetAsync("frank")).Count == 0));
    }
}
