using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0411 / XEP-0402 §5.3: alice's bookmarks in private XML, in the storage:bookmarks PEP node and in
/// urn:xmpp:bookmarks:1 stay the same whichever of them a client writes.
public sealed partial class PepModuleTests
{
    private const string LegacyStorage =
        "<storage xmlns='storage:bookmarks'>" +
        "<conference jid='tea@rooms.localhost' name='Tea' autojoin='true'><nick>Al</nick></conference>" +
        "<conference jid='work@rooms.localhost' name='Work' autojoin='false'/>" +
        "<url name='Site' url='https://example.org/'/></storage>";

    private static async Task<Element?> PrivateBookmarks(TestClient c)
    {
        var r = await c.IqAsync($"<iq type='get'><query xmlns='{Ns.Private}'><storage xmlns='{Ns.LegacyBookmarks}'/></query></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        return r.Child("query", Ns.Private)!.Child("storage", Ns.LegacyBookmarks);
    }

    private static Dictionary<string, Element> Bookmarks2(Element itemsResult) =>
        itemsResult.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Elements("item", Ns.PubSub)
            .ToDictionary(i => i.Attr("id")!, i => i.Child("conference", Ns.Bookmarks)!);

    [Test]
    public async Task Bookmarks_a_legacy_client_stores_in_private_xml_appear_in_both_pep_nodes_for_the_owner_only()
    {
        await using var modern = await Online("alice", "modern", Ns.Bookmarks, Ns.LegacyBookmarks);
        await using var legacy = await Online("alice", "legacy");
        await using var bob = await Online("bob", "pc");

        var features = (await legacy.IqAsync($"<iq type='get' to='alice@localhost'><query xmlns='{Ns.DiscoInfo}'/></iq>"))
            .Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
        Assert.That(features, Does.Contain(Ns.BookmarksConversion).And.Contain(Ns.BookmarksCompat));

        var set = await legacy.IqAsync($"<iq type='set'><query xmlns='{Ns.Private}'>{LegacyStorage}</query></iq>");
        Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());

        var rooms = Bookmarks2(await Items(modern, "alice@localhost", Ns.Bookmarks));
        Assert.That(rooms.Keys, Is.EquivalentTo(new[] { "tea@rooms.localhost", "work@rooms.localhost" }));
        Assert.That(rooms["tea@rooms.localhost"].Attr("name"), Is.EqualTo("Tea"));
        Assert.That(rooms["tea@rooms.localhost"].Attr("autojoin"), Is.EqualTo("true"));
        Assert.That(rooms["tea@rooms.localhost"].ChildText("nick", Ns.Bookmarks), Is.EqualTo("Al"));
        Assert.That(rooms["work@rooms.localhost"].Attr("autojoin"), Is.Null.Or.EqualTo("false"));

        // XEP-0411 §3: subscribers of storage:bookmarks are notified; XEP-0402 subscribers get each room.
        var legacyEvent = await modern.ReceiveAsync(Event(Ns.LegacyBookmarks));
        Assert.That(legacyEvent.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!
            .Child("storage", Ns.LegacyBookmarks)!.Elements("conference", Ns.LegacyBookmarks).Count(), Is.EqualTo(2));
        await modern.ReceiveAsync(Event(Ns.Bookmarks));

        // Private data stays private: a contact with a presence subscription reads neither node.
        AssertError(await Items(bob, "alice@localhost", Ns.Bookmarks), StanzaErrors.NotAllowed, "closed-node");
        AssertError(await Items(bob, "alice@localhost", Ns.LegacyBookmarks), StanzaErrors.NotAllowed, "closed-node");

        // Dropping a room in private XML retracts its XEP-0402 item.
        await legacy.IqAsync($"<iq type='set'><query xmlns='{Ns.Private}'><storage xmlns='{Ns.LegacyBookmarks}'>" +
            "<conference jid='tea@rooms.localhost' name='Tea' autojoin='true'><nick>Al</nick></conference></storage></query></iq>");
        Assert.That(Bookmarks2(await Items(modern, "alice@localhost", Ns.Bookmarks)).Keys, Is.EqualTo(new[] { "tea@rooms.localhost" }));
        var retract = await modern.ReceiveAsync(e => Event(Ns.Bookmarks)(e)
            && e.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("retract", Ns.PubSubEvent) is not null);
        Assert.That(retract.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("retract", Ns.PubSubEvent)!.Attr("id"),
            Is.EqualTo("work@rooms.localhost"));
    }

    [Test]
    public async Task Bookmarks_a_modern_client_publishes_or_retracts_reach_private_xml_keeping_url_bookmarks()
    {
        await using var modern = await Online("alice", "modern");
        await modern.IqAsync($"<iq type='set'><query xmlns='{Ns.Private}'>{LegacyStorage}</query></iq>");

        var r = await Publish(modern, Ns.Bookmarks, $"<conference xmlns='{Ns.Bookmarks}' name='Garden' autojoin='true'><nick>Alice</nick></conference>",
            "garden@rooms.localhost", Options(("pubsub#access_model", "whitelist"), ("pubsub#max_items", "max"), ("pubsub#send_last_published_item", "never")));
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());

        var storage = (await PrivateBookmarks(modern))!;
        var conferences = storage.Elements("conference", Ns.LegacyBookmarks).ToDictionary(c => c.Attr("jid")!);
        Assert.That(conferences.Keys, Is.EquivalentTo(new[] { "tea@rooms.localhost", "work@rooms.localhost", "garden@rooms.localhost" }));
        Assert.That(conferences["garden@rooms.localhost"].Attr("name"), Is.EqualTo("Garden"));
        Assert.That(conferences["garden@rooms.localhost"].Attr("autojoin"), Is.EqualTo("true"));
        Assert.That(conferences["garden@rooms.localhost"].ChildText("nick", Ns.LegacyBookmarks), Is.EqualTo("Alice"));
        Assert.That(storage.Child("url", Ns.LegacyBookmarks)?.Attr("url"), Is.EqualTo("https://example.org/"), "URL bookmarks have no XEP-0402 form and are kept");

        var retract = await modern.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><retract node='{Ns.Bookmarks}'><item id='tea@rooms.localhost'/></retract></pubsub></iq>");
        Assert.That(retract.Attr("type"), Is.EqualTo("result"), retract.ToString());
        Assert.That((await PrivateBookmarks(modern))!.Elements("conference", Ns.LegacyBookmarks).Select(c => c.Attr("jid")),
            Is.EquivalentTo(new[] { "work@rooms.localhost", "garden@rooms.localhost" }));

        // The storage:bookmarks PEP copy follows too.
        var legacyItem = (await Items(modern, "alice@localhost", Ns.LegacyBookmarks)).Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Child("item", Ns.PubSub)!;
        Assert.That(legacyItem.Attr("id"), Is.EqualTo("current"));
        Assert.That(legacyItem.Child("storage", Ns.LegacyBookmarks)!.Elements("conference", Ns.LegacyBookmarks).Count(), Is.EqualTo(2));
    }

    [Test]
    public async Task Bookmarks_published_to_the_storage_bookmarks_pep_node_reach_private_xml_and_bookmarks2()
    {
        await using var client = await Online("alice", "pc");
        var r = await Publish(client, Ns.LegacyBookmarks, LegacyStorage, "current",
            Options(("pubsub#access_model", "whitelist"), ("pubsub#persist_items", "true")));
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        Assert.That((await PrivateBookmarks(client))!.Elements("conference", Ns.LegacyBookmarks).Count(), Is.EqualTo(2));
        Assert.That(Bookmarks2(await Items(client, "alice@localhost", Ns.Bookmarks)).Keys,
            Is.EquivalentTo(new[] { "tea@rooms.localhost", "work@rooms.localhost" }));
    }
}
