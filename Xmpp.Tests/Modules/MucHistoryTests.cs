using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0045 §7.2.14 history on entering, with XEP-0203 delay stamps from the room.
[TestFixture]
public sealed class MucHistoryTests : MucTestBase
{
    private async Task<string> RoomWithFiveMessages(TestClient alice)
    {
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        for (int i = 1; i <= 5; i++)
        {
            await GroupchatAsync(alice, room, "m" + i);
            await ReceiveBodyAsync(alice, "m" + i);
        }
        return room;
    }

    private static async Task<List<Xmpp.Protocol.Xml.Element>> HistoryOnJoin(TestClient c, string room, string nick, string inner)
    {
        await JoinAsync(c, room, nick, inner);
        var list = new List<Xmpp.Protocol.Xml.Element>();
        while (true)
        {
            var m = await c.ReceiveAsync(e => e.Name == "message" && e.Attr("from")!.StartsWith(room, StringComparison.Ordinal));
            if (m.Child("subject", Ns.Client) is not null && m.Child("body", Ns.Client) is null) return list;
            list.Add(m);
        }
    }

    [Test]
    public async Task Joining_gets_the_history_oldest_first_with_delay_from_the_room_then_the_subject()
    {
        var alice = await Connect("alice");
        var room = await RoomWithFiveMessages(alice);
        var bob = await Connect("bob");
        var history = await HistoryOnJoin(bob, room, "Bob", "");
        Assert.That(history.Select(m => m.ChildText("body", Ns.Client)), Is.EqualTo(new[] { "m1", "m2", "m3", "m4", "m5" }));
        foreach (var m in history)
        {
            Assert.That(m.Attr("from"), Is.EqualTo(room + "/Alice"));
            Assert.That(m.Attr("to"), Is.EqualTo("bob@localhost/pc"));
            var delay = m.Child("delay", Ns.Delay)!;
            Assert.That(delay.Attr("from"), Is.EqualTo(room));
            Assert.That(DateTimeOffset.Parse(delay.Attr("stamp")!), Is.EqualTo(DateTimeOffset.UtcNow).Within(TimeSpan.FromMinutes(1)));
            Assert.That(m.Child("stanza-id", Ns.StanzaId)?.Attr("by"), Is.EqualTo(room));
        }
    }

    [TestCase("<history maxstanzas='2'/>", new[] { "m4", "m5" })]
    [TestCase("<history maxstanzas='0'/>", new string[0])]
    [TestCase("<history maxchars='0'/>", new string[0])]
    [TestCase("<history seconds='3600'/>", new[] { "m1", "m2", "m3", "m4", "m5" })]
    [TestCase("<history since='2999-01-01T00:00:00Z'/>", new string[0])]
    [TestCase("<history since='2000-01-01T00:00:00Z' maxstanzas='1'/>", new[] { "m5" })]
    public async Task History_request_limits_what_is_sent(string request, string[] expected)
    {
        var alice = await Connect("alice");
        var room = await RoomWithFiveMessages(alice);
        var bob = await Connect("bob");
        var history = await HistoryOnJoin(bob, room, "Bob", request);
        Assert.That(history.Select(m => m.ChildText("body", Ns.Client)), Is.EqualTo(expected));
    }

    [Test]
    public async Task Maxchars_counts_whole_stanzas()
    {
        var alice = await Connect("alice");
        var room = await RoomWithFiveMessages(alice);
        var bob = await Connect("bob");
        var all = await HistoryOnJoin(bob, room, "Bob", "");
        var carol = await Connect("carol");
        // Enough characters for a bit more than one stored stanza, not two.
        int oneStanza = all[^1].ToString().Length;
        var some = await HistoryOnJoin(carol, room, "Carol", $"<history maxchars='{oneStanza + 20}'/>");
        Assert.That(some.Select(m => m.ChildText("body", Ns.Client)), Is.EqualTo(new[] { "m5" }));
    }

    [Test]
    public async Task Room_history_length_caps_what_is_kept()
    {
        var alice = await Connect("alice");
        var room = await RoomWithFiveMessages(alice);
        Assert.That((await ConfigureAsync(alice, room, ("muc#maxhistoryfetch", "2"))).Attr("type"), Is.EqualTo("result"));
        var bob = await Connect("bob");
        var history = await HistoryOnJoin(bob, room, "Bob", "");
        Assert.That(history.Select(m => m.ChildText("body", Ns.Client)), Is.EqualTo(new[] { "m4", "m5" }));
    }
}
