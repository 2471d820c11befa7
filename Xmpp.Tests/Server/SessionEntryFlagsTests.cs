using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// What modules decide by (carbons on, CSI inactive, blocklist retrieved, the SASL2 user-agent) is read from the
/// session's directory entry and written through the directory: a flag flipped there is what the modules act on,
/// with no IQ or stream element from the client, as it will be when the entry comes from another node.
[TestFixture]
[Category("Sessions")]
public sealed class SessionEntryFlagsTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);
    private TestServer _server = null!;
    private ISessionDirectory _directory = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        foreach (var user in new[] { "romeo", "juliet" }) await _server.AddUserAsync(user, user + "-pw");
        _directory = _server.Get<ISessionDirectory>();
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private Task<TestClient> Online(string user, string resource) =>
        TestClient.ConnectAsync(_server, user, user + "-pw", resource, sendPresence: true);

    private static Task Settle(TestClient c) => c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    private SessionEntry Entry(TestClient c) => _directory.Find(c.Jid!)!;

    [Test]
    public async Task Enabling_and_disabling_carbons_is_recorded_in_the_directory_entry()
    {
        await using var romeo = await Online("romeo", "flags-home");
        Assert.That(Entry(romeo).Carbons, Is.False);
        await romeo.IqAsync("<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
        Assert.That(Entry(romeo).Carbons, Is.True);
        await romeo.IqAsync("<iq type='set'><disable xmlns='urn:xmpp:carbons:2'/></iq>");
        Assert.That(Entry(romeo).Carbons, Is.False);
    }

    [Test]
    public async Task Carbons_switched_on_through_the_directory_give_that_resource_copies()
    {
        await using var home = await Online("romeo", "dir-home");
        await using var phone = await Online("romeo", "dir-phone");
        await using var juliet = await Online("juliet", "dir-balcony");
        Assert.That(_directory.SetCarbons(Entry(phone).Sink, true)!.Carbons, Is.True);
        await juliet.SendAsync("<message to='romeo@localhost/dir-home' type='chat' id='d1'><body>Hi</body></message>");
        var copy = await phone.ReceiveAsync(e => e.Name == "message" && e.Child("received", Ns.Carbons) is not null);
        Assert.That(copy.Child("received", Ns.Carbons)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!.Attr("id"), Is.EqualTo("d1"));
        await home.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "d1");

        // Off again through the directory: no copy.
        _directory.SetCarbons(Entry(phone).Sink, false);
        await juliet.SendAsync("<message to='romeo@localhost/dir-home' type='chat' id='d2'><body>Still there?</body></message>");
        await home.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "d2");
        Assert.That(await phone.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);
    }

    [Test]
    public async Task Csi_state_lives_in_the_entry_and_holding_follows_it()
    {
        await using var romeo = await Online("romeo", "csi-phone");
        await using var juliet = await Online("juliet", "csi-garden");
        await romeo.SendAsync($"<inactive xmlns='{Ns.Csi}'/>");
        await Settle(romeo);
        Assert.That(Entry(romeo).CsiInactive, Is.True);
        await romeo.SendAsync($"<active xmlns='{Ns.Csi}'/>");
        await Settle(romeo);
        Assert.That(Entry(romeo).CsiInactive, Is.False);

        // Inactive set through the directory: a typing notification waits (XEP-0352 §6), <active/> releases it.
        _directory.SetCsiInactive(Entry(romeo).Sink, true);
        await juliet.SendAsync($"<message to='romeo@localhost/csi-phone' type='chat' id='t1'><composing xmlns='{Ns.ChatStates}'/></message>");
        await Settle(juliet);
        Assert.That(await romeo.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);
        await romeo.SendAsync($"<active xmlns='{Ns.Csi}'/>");
        await romeo.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "t1");
    }

    [Test]
    public async Task Retrieving_the_blocklist_marks_the_entry_for_pushes()
    {
        await using var romeo = await Online("romeo", "block-home");
        await using var other = await Online("romeo", "block-other");
        Assert.That(Entry(romeo).BlocklistRequested, Is.False);
        await romeo.IqAsync($"<iq type='get'><blocklist xmlns='{Ns.Blocking}'/></iq>");
        Assert.That(Entry(romeo).BlocklistRequested, Is.True);

        // XEP-0191 §3.3: the push goes to resources whose entry says they asked, here one marked through the directory.
        _directory.SetBlocklistRequested(Entry(other).Sink);
        await romeo.IqAsync($"<iq type='set'><block xmlns='{Ns.Blocking}'><item jid='tybalt@localhost'/></block></iq>");
        var push = await other.ReceiveAsync(e => e.Name == "iq" && e.Child("block", Ns.Blocking) is not null);
        Assert.That(push.Attr("type"), Is.EqualTo("set"));
        await romeo.IqAsync($"<iq type='set'><unblock xmlns='{Ns.Blocking}'/></iq>");
    }

    [Test]
    public async Task A_bind2_session_is_bound_with_its_inline_flags_and_user_agent()
    {
        var agent = Guid.NewGuid().ToString();
        await using var c = await TestClient.OpenAsync(_server);
        var (success, _) = await c.ScramAsync("romeo", "romeo-pw",
            extend: a => a.Add(Sasl2Login.Bind("Phone", new Element("enable", Ns.Carbons), new Element("inactive", Ns.Csi))),
            userAgent: agent);
        Assert.That(success.Is("success", Ns.Sasl2), success.ToString());
        var jid = Jid.Parse(success.ChildText("authorization-identifier", Ns.Sasl2)!);
        // <success/> is written before the session is published; a ping round trip waits for that.
        Assert.That((await c.ReadElementAsync()).Is("features", Ns.Streams));
        c.StartReading();
        await Settle(c);
        var e = _directory.Find(jid)!;
        Assert.That((e.Carbons, e.CsiInactive, e.UserAgentId), Is.EqualTo((true, true, agent)));
    }
}
