using System.Diagnostics;
using Xmpp.Protocol;
using Xmpp.Server.Modules.Muc;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// Figures for the README, run on demand: `dotnet test --filter "TestCategory=Measure"`. Loopback only, bounded in
/// count and time; they assert only loose sanity bounds so that a slow shared machine does not fail them.
[TestFixture]
[Explicit("measurement, run on demand")]
[Category("Measure")]
[NonParallelizable]
public sealed class MucMeasurementTests
{
    [Test]
    public async Task Memory_per_idle_persistent_room_after_unload()
    {
        const int rooms = 2000;
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Muc:MaxRoomsPerUser"] = "100000";
            // One account creating 2000 rooms as fast as it can: far past the join and stanza rates (docs/security.md).
            o["Xmpp:RateLimits:MucJoinsPerMinute"] = "0";
            o["Xmpp:RateLimits:PresencePerSecond"] = "0";
            o["Xmpp:RateLimits:IqPerSecond"] = "0";
        });
        await server.AddUserAsync("alice", "alice-pw");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc", sendPresence: true);
        await alice.ReceiveAsync("presence");
        var muc = server.Get<MucModule>().Services["conference.localhost"];
        long before = Heap();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < rooms; i++)
        {
            var room = $"idle{i}@conference.localhost";
            await alice.SendAsync($"<presence to='{room}/A'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>");
            await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/A");
            await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == room);
            var r = await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "1"), ("muc#roomconfig_roomname", "Room " + i));
            Assert.That(r.Attr("type"), Is.EqualTo("result"));
            await alice.SendAsync($"<presence to='{room}/A' type='unavailable'/>");
            await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/A" && e.Attr("type") == "unavailable");
        }
        var created = sw.Elapsed;
        Assert.That(await Wait.UntilAsync(() => muc.LoadedRooms == 0, TimeSpan.FromSeconds(30)), Is.True);
        long after = Heap();
        TestContext.Out.WriteLine($"MEASURE {rooms} persistent rooms created in {created.TotalSeconds:F1} s " +
            $"({rooms / created.TotalSeconds:F0} rooms/s); loaded now: {muc.LoadedRooms}; " +
            $"managed heap delta after unload: {(after - before) / 1024.0:F0} KiB = {(after - before) / (double)rooms:F0} bytes per idle room");
        Assert.That((after - before) / (double)rooms, Is.LessThan(4096), "an idle unloaded room should cost little more than its directory entry");
    }

    [Test]
    public async Task Fan_out_rate_to_a_500_occupant_room()
    {
        const int occupants = 500, messages = 100;
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Muc:MaxOccupantsPerRoom"] = "600";
            o["Xmpp:Muc:MessagesPerSecond"] = "100000";
            o["Xmpp:Muc:MessageBurst"] = "100000";
            o["Xmpp:Auth:ScramIterations"] = "4096";
        });
        var room = "big@conference.localhost";
        var clients = new List<TestClient>();
        try
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < occupants; i++)
            {
                await server.AddUserAsync("u" + i, "pw-" + i);
                var c = await TestClient.ConnectAsync(server, "u" + i, "pw-" + i, "pc", sendPresence: true);
                clients.Add(c);
                await c.SendAsync($"<presence to='{room}/u{i}'/>");
                await c.ReceiveAsync(e => e.Name == "message" && e.Child("subject", Ns.Client) is not null);
            }
            var joined = sw.Elapsed;
            foreach (var c in clients) await c.DrainAsync(TimeSpan.FromMilliseconds(1));
            var sender = clients[0];
            sw.Restart();
            var receivers = clients.Select(c => Task.Run(async () =>
            {
                for (int m = 0; m < messages; m++)
                    await c.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "fan" + m, TimeSpan.FromSeconds(120));
            })).ToList();
            for (int m = 0; m < messages; m++)
                await sender.SendAsync($"<message to='{room}' type='groupchat'><body>fan{m}</body></message>");
            await Task.WhenAll(receivers);
            var elapsed = sw.Elapsed;
            long deliveries = (long)occupants * messages;
            TestContext.Out.WriteLine($"MEASURE {occupants} occupants joined in {joined.TotalSeconds:F1} s; {messages} messages fanned out to all " +
                $"({deliveries} deliveries) in {elapsed.TotalSeconds:F2} s = {deliveries / elapsed.TotalSeconds:F0} deliveries/s, " +
                $"{messages / elapsed.TotalSeconds:F1} room messages/s (server and 500 clients in one process on this machine)");
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    private static long Heap()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
