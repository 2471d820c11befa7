using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// The service's own limits (MucOptions): message rate per occupant and occupants per room.
[TestFixture]
public sealed class MucLimitsTests : MucTestBase
{
    protected override void Configure(Dictionary<string, string?> o)
    {
        o["Xmpp:Muc:MessagesPerSecond"] = "0.01";
        o["Xmpp:Muc:MessageBurst"] = "3";
        o["Xmpp:Muc:MaxOccupantsPerRoom"] = "2";
    }

    [Test]
    public async Task Occupant_sending_faster_than_the_rate_gets_resource_constraint()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        for (int i = 1; i <= 3; i++) await GroupchatAsync(alice, room, "ok" + i);
        await ReceiveBodyAsync(alice, "ok3");
        await GroupchatAsync(alice, room, "too many");
        var error = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(ErrorCondition(error), Is.EqualTo("resource-constraint"));
        Assert.That(error.ChildText("body", Ns.Client), Is.EqualTo("too many"));
    }

    [Test]
    public async Task Room_never_admits_more_than_the_service_maximum_even_if_configured_higher()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_maxusers", "100"));
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        var carol = await Connect("carol");
        Assert.That(ErrorCondition(await JoinAsync(carol, room, "Carol")), Is.EqualTo("service-unavailable"));
    }
}
