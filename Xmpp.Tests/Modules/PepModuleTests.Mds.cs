using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0490 server assist: alice's phone marks her chat with bob as displayed; her desktop (+notify) follows.
public sealed partial class PepModuleTests
{
    private static string MdsPayload(string sid) =>
        $"<displayed xmlns='{Ns.MdsDisplayed}'><stanza-id xmlns='{Ns.StanzaId}' by='alice@localhost' id='{sid}'/></displayed>";

    [Test]
    public async Task A_displayed_marker_with_the_mds_element_notifies_the_users_other_device_and_reaches_the_contact_without_it()
    {
        await using var desktop = await Online("alice", "desktop", Ns.MdsDisplayed);
        await using var phone = await Online("alice", "phone");
        await using var bob = await Online("bob", "pc");

        var features = (await phone.IqAsync($"<iq type='get' to='alice@localhost'><query xmlns='{Ns.DiscoInfo}'/></iq>"))
            .Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
        Assert.That(features, Does.Contain(Ns.MdsServerAssist));

        await phone.SendAsync($"<message to='bob@localhost' id='m1'><displayed xmlns='{Ns.ChatMarkers}' id='the-msg-1'/>{MdsPayload("sid-42")}</message>");

        var evt = await desktop.ReceiveAsync(Event(Ns.MdsDisplayed));
        var item = evt.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!;
        Assert.That(item.Attr("id"), Is.EqualTo("bob@localhost"));
        Assert.That(item.Child("displayed", Ns.MdsDisplayed)!.Child("stanza-id", Ns.StanzaId)!.Attr("id"), Is.EqualTo("sid-42"));

        var forwarded = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m1");
        Assert.That(forwarded.Child("displayed", Ns.ChatMarkers), Is.Not.Null, forwarded.ToString());
        Assert.That(forwarded.Child("displayed", Ns.MdsDisplayed), Is.Null, "the stanza-id must not leak to the contact");

        // The owner retrieves the node (catching up, §4.4); the node is private (whitelist, max items).
        var items = await Items(phone, "alice@localhost", Ns.MdsDisplayed);
        Assert.That(ItemIds(items), Is.EqualTo(new[] { "bob@localhost" }));
        var node = await _server.Get<Xmpp.Server.Modules.Pep.PepService>().FindAsync(phone.Jid!, Ns.MdsDisplayed);
        Assert.That(node!.Config.Access, Is.EqualTo(Xmpp.Server.Modules.Pep.PepAccessModel.Whitelist));
        Assert.That(node.Config.MaxItems, Is.EqualTo(Xmpp.Server.Modules.Pep.PepNodeConfig.Max));

        // A contact with a presence subscription still cannot read it.
        AssertError(await Items(bob, "alice@localhost", Ns.MdsDisplayed), StanzaErrors.NotAllowed, "closed-node");
        Assert.That(await bob.TryReceiveAsync(Event(Ns.MdsDisplayed), Quiet), Is.Null);
    }

    [Test]
    public async Task A_later_marker_for_the_same_chat_replaces_its_item_and_other_chats_get_their_own()
    {
        await using var phone = await Online("alice", "phone");
        await phone.SendAsync($"<message to='bob@localhost'><displayed xmlns='{Ns.ChatMarkers}' id='a'/>{MdsPayload("s1")}</message>");
        await phone.SendAsync($"<message to='bob@localhost'><displayed xmlns='{Ns.ChatMarkers}' id='b'/>{MdsPayload("s2")}</message>");
        await phone.SendAsync($"<message to='carol@localhost'><displayed xmlns='{Ns.ChatMarkers}' id='c'/>{MdsPayload("s3")}</message>");
        Assert.That(await Wait.UntilAsync(async () => ItemIds(await Items(phone, "alice@localhost", Ns.MdsDisplayed)).Count == 2));
        var items = (await Items(phone, "alice@localhost", Ns.MdsDisplayed)).Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!
            .Elements("item", Ns.PubSub).ToDictionary(i => i.Attr("id")!, i => i.Child("displayed", Ns.MdsDisplayed)!.Child("stanza-id", Ns.StanzaId)!.Attr("id"));
        Assert.That(items["bob@localhost"], Is.EqualTo("s2"));
        Assert.That(items["carol@localhost"], Is.EqualTo("s3"));
    }

    [Test]
    public async Task A_message_with_only_the_mds_element_is_refused_and_publishes_nothing()
    {
        await using var phone = await Online("alice", "phone");
        await using var bob = await Online("bob", "pc");
        await phone.SendAsync($"<message to='bob@localhost' id='empty'>{MdsPayload("s1")}</message>");
        var error = await phone.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "empty");
        AssertError(error, StanzaErrors.BadRequest);
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message" && e.Attr("id") == "empty", Quiet), Is.Null);
        Assert.That(ItemIds(await Items(phone, "alice@localhost", Ns.MdsDisplayed)), Is.Empty);
    }

    [Test]
    public async Task An_mds_element_without_exactly_one_stanza_id_is_refused()
    {
        await using var phone = await Online("alice", "phone");
        await phone.SendAsync($"<message to='bob@localhost' id='bad'><displayed xmlns='{Ns.ChatMarkers}' id='a'/><displayed xmlns='{Ns.MdsDisplayed}'/></message>");
        AssertError(await phone.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "bad"), StanzaErrors.BadRequest);
    }
}

public sealed partial class PepModuleTests
{
    [Test]
    public async Task An_mds_element_in_a_message_without_to_is_refused_and_publishes_nothing()
    {
        await using var phone = await Online("alice", "phone");
        await phone.SendAsync($"<message id='noto'><displayed xmlns='{Ns.ChatMarkers}' id='a'/>{MdsPayload("s1")}</message>");
        AssertError(await phone.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "noto"), StanzaErrors.BadRequest);
        Assert.That(ItemIds(await Items(phone, "alice@localhost", Ns.MdsDisplayed)), Is.Empty);
    }
}
