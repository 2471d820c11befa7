using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Tests.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

// Issue 20, "kill -9 during every kind of write": a room's configuration and affiliations.
public sealed partial class CrashRecoveryTests
{
    [Test]
    public async Task Kill_9_during_room_configuration_and_affiliation_writes_loses_no_acknowledged_change_and_applies_none_twice()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        const string room = "crash@conference.localhost";
        var membersAcked = new List<string>();
        var membersSent = new HashSet<string>(StringComparer.Ordinal);
        int titleAcked = 0, titleSent = 0;
        // Hundreds of IQs a second from one client, on purpose: the per-account IQ rate limit is not under test here.
        string[] args = [.. Args(), "--Xmpp:RateLimits:IqPerSecond=0"];
        await using (var server = await ServerProcess.StartAsync(_dir, _c2s, _environment, args))
        {
            var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc", sendPresence: true);
            await MucTestBase.CreateInstantAsync(alice, room, "Alice");
            var persistent = await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "1"));
            Assert.That(persistent.Attr("type"), Is.EqualTo("result"), persistent.ToString());
            // Alone in the room she would hear every change (104); she leaves so that only the IQ answers come back.
            await alice.SendAsync($"<presence to='{room}/Alice' type='unavailable'/>");
            await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == room + "/Alice" && e.Attr("type") == "unavailable");
            var killer = Task.Run(async () =>
            {
                await Task.Delay(2500);
                server.KillHard();
            });
            try
            {
                // XEP-0045 §9.3 and §10.2: the room answers each change only after its record's write is durable
                // (MucRoom sends its queued answers after SaveAsync), so every result counted here must survive.
                for (var i = 1; i <= 5000; i++)
                {
                    membersSent.Add($"m{i}@localhost");
                    var member = await MucTestBase.AdminAsync(alice, room, $"<item affiliation='member' jid='m{i}@localhost'/>");
                    Assert.That(member.Attr("type"), Is.EqualTo("result"), member.ToString());
                    membersAcked.Add($"m{i}@localhost");
                    titleSent = i;
                    var renamed = await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_roomname", $"t{i}"));
                    Assert.That(renamed.Attr("type"), Is.EqualTo("result"), renamed.ToString());
                    titleAcked = i;
                }
            }
            catch (Exception e) when (e is IOException or TimeoutException or ObjectDisposedException or System.Net.Sockets.SocketException)
            {
                // The stream ended under us: the kill.
            }
            await killer;
            await alice.DisposeAsync();
        }
        Assert.That(membersAcked.Count, Is.GreaterThanOrEqualTo(5), "writes were flowing when the process was killed");
        TestContext.Out.WriteLine($"{storage}: {membersAcked.Count} member changes and {titleAcked} configuration changes acknowledged before the kill");

        await using var restarted = await ServerProcess.StartAsync(_dir, _c2s, _environment, Args());
        await using var again = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
        var list = await MucTestBase.AdminAsync(again, room, "<item affiliation='member'/>", "get");
        Assert.That(list.Attr("type"), Is.EqualTo("result"), list.ToString());
        var stored = list.Child("query", Ns.MucAdmin)!.Elements("item", Ns.MucAdmin).Select(i => i.Attr("jid")!).ToList();
        Assert.That(membersAcked.Where(j => !stored.Contains(j)), Is.Empty, $"acknowledged {membersAcked.Count}, stored {stored.Count}");
        Assert.That(stored, Is.Unique, "no member twice");
        Assert.That(stored.Where(j => !membersSent.Contains(j)), Is.Empty, "nothing that was never asked for");
        var owners = await MucTestBase.AdminAsync(again, room, "<item affiliation='owner'/>", "get");
        Assert.That(owners.Child("query", Ns.MucAdmin)!.Elements("item", Ns.MucAdmin).Select(i => i.Attr("jid")), Is.EqualTo(new[] { "alice@localhost" }));

        var config = await again.IqAsync($"<iq type='get' to='{room}'><query xmlns='{Ns.MucOwner}'/></iq>");
        Assert.That(config.Attr("type"), Is.EqualTo("result"), config.ToString());
        Assert.That(DataForm.TryParse(config.Child("query", Ns.MucOwner)!.Child("x", Ns.DataForms)!, out var form, out _), Is.True);
        Assert.That(form!.Value("muc#roomconfig_persistentroom"), Is.AnyOf("1", "true"));
        // The newest acknowledged title, or the one in flight at the kill: never an older one.
        var title = form.Value("muc#roomconfig_roomname")!;
        Assert.That(int.Parse(title[1..]), Is.InRange(titleAcked, titleSent), $"title {title}, acknowledged t{titleAcked}, sent t{titleSent}");
    }
}
