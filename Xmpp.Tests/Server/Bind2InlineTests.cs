using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// XEP-0386 inline features: modules announce them inside the SASL2 bind feature and enable them for the new session
/// before &lt;success/&gt;, so nothing slips through between login and enabling.
[TestFixture]
public sealed class Bind2InlineTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        foreach (var user in new[] { "romeo", "juliet" }) await _server.AddUserAsync(user, user + "-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    /// Logs in over SASL2 with Bind 2 and the given inline requests, then reads the features and starts reading.
    private async Task<(TestClient Client, Jid Jid, Element Success)> Bind2LoginAsync(string user, params Element[] inline)
    {
        var c = await TestClient.OpenAsync(_server);
        var (success, _) = await c.ScramAsync(user, user + "-pw", extend: a => a.Add(Sasl2Login.Bind("Phone", inline)),
            userAgent: Guid.NewGuid().ToString());
        Assert.That(success.Is("success", Ns.Sasl2), success.ToString());
        Assert.That((await c.ReadElementAsync()).Is("features", Ns.Streams));
        c.StartReading();
        await c.SendAsync(new Element("presence", Ns.Client));
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        return (c, Jid.Parse(success.ChildText("authorization-identifier", Ns.Sasl2)!), success);
    }

    [Test]
    public async Task The_bind_feature_lists_exactly_the_inline_features_modules_registered()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var features = c.Feature()!.Child("inline", Ns.Sasl2)!.Child("bind", Ns.Bind2)!.Child("inline", Ns.Bind2)!
            .Elements("feature", Ns.Bind2).Select(f => f.Attr("var")).ToList();
        Assert.That(features, Is.EquivalentTo(_server.Get<ModuleRegistry>().Bind2InlineFeatures));
        Assert.That(features, Does.Contain(Ns.Carbons).And.Contain(Ns.Csi));
    }

    [Test]
    public async Task Carbons_enabled_inline_copy_messages_sent_to_another_device_from_the_first_stanza()
    {
        var (phone, _, success) = await Bind2LoginAsync("romeo", new Element("enable", Ns.Carbons));
        await using var _p = phone;
        Assert.That(success.Child("bound", Ns.Bind2)!.Elements().Any(), Is.False, "carbons need no answer (XEP-0386 §3.2)");
        await using var desk = await TestClient.ConnectAsync(_server, "romeo", "romeo-pw", "desk", sendPresence: true);
        await using var juliet = await TestClient.ConnectAsync(_server, "juliet", "juliet-pw", "balcony");
        await juliet.SendAsync("<message to='romeo@localhost/desk' type='chat' id='c1'><body>Wherefore art thou?</body></message>");
        var carbon = await phone.ReceiveAsync(e => e.Name == "message" && e.Child("received", Ns.Carbons) is not null);
        Assert.That(carbon.Child("received", Ns.Carbons)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!.Attr("id"), Is.EqualTo("c1"));
    }

    [Test]
    public async Task Without_the_inline_enable_a_bind2_session_gets_no_carbons()
    {
        var (phone, _, _) = await Bind2LoginAsync("romeo");
        await using var _p = phone;
        await using var desk = await TestClient.ConnectAsync(_server, "romeo", "romeo-pw", "desk2", sendPresence: true);
        await using var juliet = await TestClient.ConnectAsync(_server, "juliet", "juliet-pw", "garden");
        await juliet.SendAsync("<message to='romeo@localhost/desk2' type='chat' id='c2'><body>Hello</body></message>");
        await desk.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "c2");
        Assert.That(await phone.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);
    }

    [Test]
    public async Task Stream_management_enabled_inline_answers_in_bound_counts_and_resumes_after_a_sasl2_login()
    {
        var (phone, jid, success) = await Bind2LoginAsync("romeo", new Element("enable", Ns.StreamManagement).SetAttr("resume", "true"));
        var enabled = success.Child("bound", Ns.Bind2)!.Child("enabled", Ns.StreamManagement);
        Assert.That(enabled?.Attr("resume"), Is.EqualTo("true"), success.ToString());
        var id = enabled!.Attr("id")!;
        // The login helper sent a presence and a ping: both were counted from the first stanza on.
        await phone.SendRawAsync("<r xmlns='urn:xmpp:sm:3'/>");
        var ack = await phone.ReceiveAsync(e => e.Is("a", Ns.StreamManagement));
        Assert.That(ack.Attr("h"), Is.EqualTo("2"));

        await using var juliet = await TestClient.ConnectAsync(_server, "juliet", "juliet-pw", "tower");
        await juliet.SendAsync($"<message to='{jid}' type='chat' id='s1'><body>one</body></message>");
        await phone.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "s1");
        // Stanzas the phone got: the ping result, s1, and whatever else is buffered (its own presence, if echoed).
        var others = (await phone.DrainAsync(Quiet)).Count(e => e.Namespace == Ns.Client);
        var handled = 2 + others;
        phone.Abort();
        await phone.DisposeAsync();
        var detached = await Wait.UntilAsync(() =>
            (_server.Get<Xmpp.Server.Sessions.ISessionDirectory>().Find(jid)?.Sink as Xmpp.Server.Sessions.ClientSession)?.StreamManagement?.IsDetached == true);
        Assert.That(detached, Is.True);
        await juliet.SendAsync($"<message to='{jid}' type='chat' id='s2'><body>two</body></message>");

        // A SASL2 login without Bind 2, then the XEP-0198 resumption in place of binding.
        await using var again = await TestClient.OpenAsync(_server);
        var (ok, _) = await again.ScramAsync("romeo", "romeo-pw");
        Assert.That(ok.Is("success", Ns.Sasl2));
        await again.ReadElementAsync();
        await again.SendAsync(new Element("resume", Ns.StreamManagement).SetAttr("previd", id).SetAttr("h", handled.ToString()));
        var resumed = await again.ReadElementAsync();
        Assert.That(resumed.Is("resumed", Ns.StreamManagement), resumed.ToString());
        again.StartReading();
        var two = await again.ReceiveAsync(e => e.Name == "message");
        Assert.That(two.Attr("id"), Is.EqualTo("s2"), "only what was not acknowledged is sent again");
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task The_features_after_bind2_offer_stream_management_only_when_it_was_not_enabled_inline(bool inline)
    {
        // XEP-0388 §2.6.1: the features after <success/> are those still applicable; XEP-0198 §3 allows one enable.
        await using var c = await TestClient.OpenAsync(_server);
        Element[] requests = inline ? [new Element("enable", Ns.StreamManagement).SetAttr("resume", "true")] : [];
        var (success, _) = await c.ScramAsync("romeo", "romeo-pw", extend: a => a.Add(Sasl2Login.Bind("Phone", requests)),
            userAgent: Guid.NewGuid().ToString());
        Assert.That(success.Child("bound", Ns.Bind2)?.Child("enabled", Ns.StreamManagement) is not null, Is.EqualTo(inline));
        var features = await c.ReadElementAsync();
        Assert.That(features.Is("features", Ns.Streams), features.ToString());
        Assert.That(features.Child("sm", Ns.StreamManagement) is not null, Is.EqualTo(!inline), features.ToString());
        Assert.That(features.Child("csi", Ns.Csi), Is.Not.Null, "the other session features stay");
    }

    [Test]
    public async Task Resume_inside_authenticate_takes_the_session_over_in_one_round_trip_and_skips_binding()
    {
        await using (var probe = await TestClient.OpenAsync(_server))
            Assert.That(probe.Feature()!.Child("inline", Ns.Sasl2)!.Child("sm", Ns.StreamManagement), Is.Not.Null);
        var (phone, jid, success) = await Bind2LoginAsync("juliet", new Element("enable", Ns.StreamManagement).SetAttr("resume", "true"));
        var id = success.Child("bound", Ns.Bind2)!.Child("enabled", Ns.StreamManagement)!.Attr("id")!;
        var handled = 1 + (await phone.DrainAsync(Quiet)).Count(e => e.Namespace == Ns.Client); // the ping result, and any echo
        phone.Abort();
        await phone.DisposeAsync();
        Assert.That(await Wait.UntilAsync(() =>
            (_server.Get<Xmpp.Server.Sessions.ISessionDirectory>().Find(jid)?.Sink as Xmpp.Server.Sessions.ClientSession)?.StreamManagement?.IsDetached == true), Is.True);
        await using var romeo = await TestClient.ConnectAsync(_server, "romeo", "romeo-pw", "garden");
        await romeo.SendAsync($"<message to='{jid}' type='chat' id='g1'><body>gap</body></message>");
        await romeo.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

        await using var again = await TestClient.OpenAsync(_server);
        var (resumed, _) = await again.ScramAsync("juliet", "juliet-pw", extend: a => a
            .Add(new Element("resume", Ns.StreamManagement).SetAttr("previd", id).SetAttr("h", handled.ToString()))
            .Add(Sasl2Login.Bind("Phone")));
        Assert.That(resumed.Child("resumed", Ns.StreamManagement)?.Attr("previd"), Is.EqualTo(id), resumed.ToString());
        Assert.That(resumed.Child("bound", Ns.Bind2), Is.Null, "a resumed session is already bound (XEP-0386 §3.2)");
        Assert.That(resumed.ChildText("authorization-identifier", Ns.Sasl2), Is.EqualTo(jid.ToString()));
        var features = await again.ReadElementAsync();
        Assert.That(features.Is("features", Ns.Streams));
        Assert.That(features.Child("sm", Ns.StreamManagement), Is.Null, "the resumed session has stream management already");
        again.StartReading();
        Assert.That((await again.ReceiveAsync(e => e.Name == "message")).Attr("id"), Is.EqualTo("g1"));
    }

    [Test]
    public async Task A_failed_inline_resume_is_reported_in_success_and_binding_goes_ahead()
    {
        await using var c = await TestClient.OpenAsync(_server);
        var (success, _) = await c.ScramAsync("juliet", "juliet-pw", extend: a => a
            .Add(new Element("resume", Ns.StreamManagement).SetAttr("previd", "no-such-session").SetAttr("h", "0"))
            .Add(Sasl2Login.Bind("Phone")));
        Assert.That(success.Is("success", Ns.Sasl2), success.ToString());
        Assert.That(success.Child("failed", Ns.StreamManagement)?.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null, success.ToString());
        Assert.That(success.Child("bound", Ns.Bind2), Is.Not.Null);
        Assert.That(success.ChildText("authorization-identifier", Ns.Sasl2), Does.StartWith("juliet@localhost/Phone/"));
    }

    [Test]
    public async Task Csi_inactive_inline_starts_the_session_inactive()
    {
        var (phone, jid, _) = await Bind2LoginAsync("romeo", new Element("inactive", Ns.Csi));
        await using var _p = phone;
        await using var juliet = await TestClient.ConnectAsync(_server, "juliet", "juliet-pw", "window");
        await juliet.SendAsync($"<message to='{jid}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await juliet.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(await phone.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null, "a typing notification waits while inactive");
        await phone.SendRawAsync("<active xmlns='urn:xmpp:csi:0'/>");
        var held = await phone.ReceiveAsync(e => e.Name == "message");
        Assert.That(held.Child("composing", Ns.ChatStates), Is.Not.Null);
    }
}
