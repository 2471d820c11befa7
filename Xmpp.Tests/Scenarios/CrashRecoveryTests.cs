using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

/// The offline spool is durable: a kill -9 in the middle of traffic loses nothing the server had confirmed,
/// and a graceful stop tells clients and flushes storage. On the embedded store and on PostgreSQL. The room and upload
/// writes are in CrashRecoveryTests.Muc.cs and CrashRecoveryTests.Upload.cs.
[TestFixtureSource(nameof(Storages))]
[NonParallelizable]
[Category("Faults")]
public sealed partial class CrashRecoveryTests(string storage)
{
    public static IEnumerable<TestFixtureData> Storages()
    {
        yield return new TestFixtureData("embedded");
        var postgres = new TestFixtureData("postgresql");
        postgres.Properties.Add(NUnit.Framework.Internal.PropertyNames.Category, "PostgreSql");
        yield return postgres;
    }

    private readonly PostgresTestDatabase? _database = storage == "postgresql" ? new PostgresTestDatabase("crash") : null;
    private Dictionary<string, string>? _environment;
    private string _dir = null!;
    private int _c2s, _tls;

    [SetUp]
    public async Task Prepare()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-crash-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _c2s = TestServer.FreePort();
        _tls = TestServer.FreePort();
        // The writers below send as fast as the socket takes it, past the account's message rate (docs/security.md);
        // what is measured here is durability, so the rate is off.
        _environment = new() { ["XMPP__RATELIMITS__MESSAGESPERSECOND"] = "0" };
        if (_database is not null)
        {
            await _database.ResetAsync();
            _environment["XMPP__STORAGE__CONNECTIONSTRING"] = await _database.ConnectionStringAsync();
        }
        foreach (var (u, p) in new[] { ("alice", "alice-pw"), ("bob", "bob-pw") })
        {
            var r = await ServerProcess.RunAsync(_dir, _environment, ["user", "add", u, p, .. Args()]);
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Output);
        }
    }

    [TearDown]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    private string[] Args(int httpPort = 0) =>
    [
        "--domain", "localhost", "--c2s-port", _c2s.ToString(), "--c2s-tls-port", _tls.ToString(),
        "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"), "--listen", "127.0.0.1",
        "--http-port", httpPort.ToString(), "--log-level", "Warning", "--storage", storage,
    ];

    [Test]
    public async Task Kill_9_during_traffic_loses_no_confirmed_message_and_duplicates_none()
    {
        await using var server = await ServerProcess.StartAsync(_dir, _c2s, _environment, Args());
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        var (sent, confirmed) = await SendUntilKilledAsync(server, endpoint, "k");
        Assert.That(confirmed, Is.GreaterThan(10), "traffic was flowing when the process was killed");

        await using var restarted = await ServerProcess.StartAsync(_dir, _c2s, _environment, Args());
        await using var bob = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "phone");
        await bob.SendAsync("<presence/>");
        var ids = new List<int>();
        while (await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(2)) is { } m)
            ids.Add(int.Parse(m.Attr("id")![1..]));
        Assert.That(ids.Count, Is.GreaterThanOrEqualTo(confirmed), $"confirmed {confirmed}, sent {sent}");
        Assert.That(ids, Is.EqualTo(Enumerable.Range(1, ids.Count)), "a gap-free prefix, in order, no duplicates");
        Assert.That(ids.Count, Is.LessThanOrEqualTo(sent));
    }

    [Test]
    public async Task Kill_9_during_archived_traffic_loses_no_acknowledged_archive_record()
    {
        string[] args = [.. Args(), "--Xmpp:Mam:DefaultMode=always"];
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        int sent, confirmed;
        await using (var server = await ServerProcess.StartAsync(_dir, _c2s, _environment, args))
            (sent, confirmed) = await SendUntilKilledAsync(server, endpoint, "a");
        Assert.That(confirmed, Is.GreaterThan(10), "traffic was flowing when the process was killed");

        await using var restarted = await ServerProcess.StartAsync(_dir, _c2s, _environment, args);
        await using var again = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
        var bodies = new List<int>();
        string? after = null;
        while (true)
        {
            var set = $"<set xmlns='http://jabber.org/protocol/rsm'><max>100</max>{(after is null ? "" : $"<after>{after}</after>")}</set>";
            var answer = await again.IqAsync($"<iq type='set'><query xmlns='urn:xmpp:mam:2' queryid='k'>{set}</query></iq>", TimeSpan.FromSeconds(30));
            while (await again.TryReceiveAsync(e => e.Name == "message" && e.Child("result", Ns.Mam) is not null, TimeSpan.FromMilliseconds(1)) is { } m)
                bodies.Add(int.Parse(m.Child("result", Ns.Mam)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!.ChildText("body", Ns.Client)!));
            var fin = answer.Child("fin", Ns.Mam)!;
            if (fin.Attr("complete") == "true")
                break;
            after = fin.Child("set", Ns.Rsm)!.ChildText("last", Ns.Rsm);
        }
        Assert.That(bodies.Count, Is.GreaterThanOrEqualTo(confirmed), $"confirmed {confirmed}, sent {sent}");
        Assert.That(bodies, Is.EqualTo(Enumerable.Range(1, bodies.Count)), "a gap-free prefix of alice's messages, in order, no duplicates");
    }

    [Test]
    public async Task Kill_9_during_roster_and_pep_writes_loses_no_acknowledged_one()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        const string options = "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>" +
            "<value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#max_items'><value>max</value></field></x></publish-options>";
        var rosterAcked = new List<string>();
        var itemsAcked = new List<string>();
        // Hundreds of IQs a second from one client, on purpose: the per-account IQ rate limit is not under test here.
        await using (var server = await ServerProcess.StartAsync(_dir, _c2s, _environment, [.. Args(), "--Xmpp:RateLimits:IqPerSecond=0"]))
        {
            var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
            var killer = Task.Run(async () =>
            {
                await Task.Delay(1500);
                server.KillHard();
            });
            try
            {
                // Each IQ is answered only after its write is durable, so every result counted here must survive.
                for (var i = 1; i <= 5000; i++)
                {
                    var roster = await alice.IqAsync($"<iq type='set'><query xmlns='{Ns.Roster}'><item jid='c{i}@localhost'/></query></iq>", TimeSpan.FromSeconds(10));
                    if (roster.Attr("type") == "result") rosterAcked.Add($"c{i}@localhost");
                    var publish = await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='urn:test:crash'><item id='i{i}'>" +
                        $"<entry xmlns='urn:test'>{i}</entry></item></publish>{options}</pubsub></iq>", TimeSpan.FromSeconds(10));
                    Assert.That(publish.Attr("type"), Is.EqualTo("result"), publish.ToString());
                    itemsAcked.Add($"i{i}");
                }
            }
            catch (Exception e) when (e is IOException or TimeoutException or ObjectDisposedException)
            {
                // The stream ended under us: the kill.
            }
            await killer;
            await alice.DisposeAsync();
        }
        Assert.That(rosterAcked.Count, Is.GreaterThan(10), "writes were flowing when the process was killed");

        await using var restarted = await ServerProcess.StartAsync(_dir, _c2s, _environment, Args());
        await using var again = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
        var stored = (await again.IqAsync($"<iq type='get'><query xmlns='{Ns.Roster}'/></iq>"))
            .Child("query", Ns.Roster)!.Elements("item", Ns.Roster).Select(i => i.Attr("jid")!).ToHashSet();
        Assert.That(rosterAcked.Where(j => !stored.Contains(j)), Is.Empty, $"acknowledged {rosterAcked.Count}, stored {stored.Count}");
        var items = (await again.IqAsync($"<iq type='get'><pubsub xmlns='{Ns.PubSub}'><items node='urn:test:crash'/></pubsub></iq>", TimeSpan.FromSeconds(30)))
            .Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Elements("item", Ns.PubSub).Select(i => i.Attr("id")!).ToHashSet();
        Assert.That(itemsAcked.Where(id => !items.Contains(id)), Is.Empty, $"acknowledged {itemsAcked.Count}, stored {items.Count}");
    }

    [Test]
    public async Task Graceful_stop_sends_system_shutdown_and_keeps_the_spool()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        await using (var server = await ServerProcess.StartAsync(_dir, _c2s, _environment, Args()))
        {
            await using var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
            for (int i = 1; i <= 20; i++)
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='g{i}'><body>{i}</body></message>");
            await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            var exit = server.TerminateAsync();
            var error = await alice.ReceiveAsync(e => e.Is("error", Ns.Streams));
            Assert.That(error.Child("system-shutdown", Ns.StreamErrors), Is.Not.Null);
            Assert.That(await exit, Is.EqualTo(0), server.Output);
        }
        await using var restarted = await ServerProcess.StartAsync(_dir, _c2s, _environment, Args());
        await using var bob = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "phone");
        await bob.SendAsync("<presence/>");
        var ids = new List<string?>();
        for (int i = 0; i < 20; i++) ids.Add((await bob.ReceiveAsync("message")).Attr("id"));
        Assert.That(ids, Is.EqualTo(Enumerable.Range(1, 20).Select(i => "g" + i)));
    }

    // Alice sends numbered messages to bob, with a ping after every fifth, until the server is killed 1.5 s in. The
    // server handles one connection's stanzas in order and answers an IQ only once the writes queued by the stanzas
    // before it are durable, so a pong proves everything sent before it is stored. Returns how many were sent and
    // how many confirmed so.
    private static async Task<(int Sent, int Confirmed)> SendUntilKilledAsync(ServerProcess server, ServerEndpoint endpoint, string idPrefix)
    {
        var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
        int sent = 0, confirmed = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var killer = Task.Run(async () =>
        {
            await Task.Delay(1500);
            server.KillHard();
        });
        try
        {
            while (!stop.IsCancellationRequested)
            {
                sent++;
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='{idPrefix}{sent}'><body>{sent}</body></message>");
                if (sent % 5 == 0)
                {
                    await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", TimeSpan.FromSeconds(5));
                    confirmed = sent;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or TimeoutException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
        }
        await killer;
        await alice.DisposeAsync();
        return (sent, confirmed);
    }
}
