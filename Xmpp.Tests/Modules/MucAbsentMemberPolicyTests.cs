using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// Muc:NotifyAbsentMembers "all" notifies absent members of every message (here without a rate limit), "none" of nothing.
[TestFixture("all")]
[TestFixture("none")]
public sealed class MucAbsentMemberPolicyTests(string policy) : MucTestBase
{
    protected override void Configure(Dictionary<string, string?> o)
    {
        o["Xmpp:Muc:NotifyAbsentMembers"] = policy;
        o["Xmpp:Muc:NotifyIntervalSeconds"] = "0";
    }

    [Test]
    public async Task Every_message_or_none_reaches_an_absent_member()
    {
        var alice = await Connect("alice");
        var room = NewRoom();
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_membersonly", "1"));
        await AdminAsync(alice, room, "<item affiliation='member' jid='bob@localhost'/>");
        var bob = await Connect("bob");
        foreach (var body in new[] { "first", "second" })
        {
            await GroupchatAsync(alice, room, body);
            await ReceiveBodyAsync(alice, body);
            var note = await bob.TryReceiveAsync(e => e.Name == "message" && e.Attr("from") == room && e.Attr("type") == "normal", Quiet * 3);
            if (policy == "all") Assert.That(note?.ChildText("body", Ns.Client), Is.EqualTo($"Alice in {room.Split('@')[0]}: {body}"));
            else Assert.That(note, Is.Null);
        }
    }
}
