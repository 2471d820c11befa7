using System.Text;
using Npgsql;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Cli;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;
using Xmpp.Tests.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// xmppd migrate, run as the real binary: data put in through the protocol on the embedded store is copied to a
/// private PostgreSQL database and back, and a server started on each copy shows it to the same clients; a second run
/// changes nothing, a run killed part way is finished by the next, and a data folder a server holds is refused.
[TestFixture]
[Category("PostgreSql")]
[NonParallelizable]
public sealed class MigrateCommandTests
{
    private const string Room = "tea@conference.localhost";
    private readonly PostgresTestDatabase _database = new("migrate");
    private string _dir = null!;
    private int _queries;

    [SetUp]
    public async Task Prepare()
    {
        await _database.ResetAsync();
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-migrate-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Cleanup()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Folder(string name) => Path.Combine(_dir, name);

    private static Action<Dictionary<string, string?>> Embedded => o => o["Xmpp:Storage:Provider"] = "embedded";

    private async Task<(int ExitCode, string Output)> MigrateAsync(string provider, string dataDir, string to, string destination,
        Dictionary<string, string>? environment = null)
    {
        environment ??= [];
        environment["XMPP__STORAGE__CONNECTIONSTRING"] = await _database.ConnectionStringAsync();
        return await ServerProcess.RunAsync(_dir, environment,
            "migrate", "--to", to, destination, "--storage", provider, "--data-dir", dataDir, "--domain", "localhost",
            "--cert-dir", Folder("certs"), "--log-level", "Warning");
    }

    private static string[] CountLines(string output) =>
        output.Split('\n').Select(l => l.TrimEnd()).Where(l => l.StartsWith("accounts ", StringComparison.Ordinal) || l.StartsWith("roster items", StringComparison.Ordinal)
            || l.StartsWith("documents", StringComparison.Ordinal) || l.StartsWith("upload records", StringComparison.Ordinal)
            || l.StartsWith("archive ", StringComparison.Ordinal) && !l.Contains("copied")).ToArray();

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(await _database.ConnectionStringAsync());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    [Test]
    public async Task Everything_moves_to_postgresql_and_back_and_clients_find_it_on_each()
    {
        var stanzaIds = new List<string>();
        await using (var embedded = await TestServer.StartAsync(Folder("a"), Embedded))
        {
            await embedded.AddUserAsync("alice", "alice-pw");
            await embedded.AddUserAsync("bob", "bob-pw");
            await using (var alice = await TestClient.ConnectAsync(embedded, "alice", "alice-pw", "pc", sendPresence: true))
            {
                Assert.That((await alice.IqAsync(
                    "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>"))
                    .Attr("type"), Is.EqualTo("result"));
                Assert.That((await alice.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard></iq>")).Attr("type"), Is.EqualTo("result"));
                Assert.That((await alice.IqAsync("<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='spam@example.org'/></block></iq>")).Attr("type"),
                    Is.EqualTo("result"));
                await MucTestBase.CreateInstantAsync(alice, Room, "Alice");
                var configured = await MucTestBase.ConfigureAsync(alice, Room, ("muc#roomconfig_persistentroom", "1"), ("muc#roomconfig_roomname", "Tea"));
                Assert.That(configured.Attr("type"), Is.EqualTo("result"), configured.ToString());
                await alice.SendAsync($"<message to='{Room}' type='groupchat'><body>kept in the room</body></message>");
                await alice.ReceiveAsync(e => e.ChildText("body", Ns.Client) == "kept in the room");

                await using var bob = await TestClient.ConnectAsync(embedded, "bob", "bob-pw", "phone", sendPresence: true);
                for (var i = 1; i <= 3; i++)
                {
                    await bob.SendAsync($"<message to='alice@localhost' type='chat' id='c{i}'><body>chat {i}</body></message>");
                    var received = await alice.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == $"chat {i}");
                    stanzaIds.Add(received.Child("stanza-id", Ns.StanzaId)!.Attr("id")!);
                }
                await alice.CloseAsync();
                for (var i = 1; i <= 2; i++)
                    await bob.SendAsync($"<message to='alice@localhost' type='chat' id='o{i}'><body>offline {i}</body></message>");
                await bob.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            }
            var storage = embedded.Get<IStorage>();
            await storage.Uploads.AddAsync(new UploadRecord("u1", "alice", "tea.txt", "text/plain", 3, DateTimeOffset.UtcNow));
            await storage.FlushAsync();
        }

        var first = await MigrateAsync("embedded", Path.Combine(Folder("a"), "data"), "postgresql", await _database.ConnectionStringAsync());
        Assert.That(first.ExitCode, Is.EqualTo(0), first.Output);
        Assert.That(first.Output, Does.Contain("every count matches"));
        Assert.That(first.Output, Does.Not.Contain((await PostgresInstance.GetAsync()).Password));
        Assert.That(await ScalarAsync("SELECT count(*) FROM archive_offline WHERE owner = 'alice'"), Is.EqualTo(2));
        Assert.That(await ScalarAsync("SELECT count(*) FROM uploads"), Is.EqualTo(1));

        // Again: nothing is copied twice, the counts stay as they were.
        var second = await MigrateAsync("embedded", Path.Combine(Folder("a"), "data"), "postgresql", await _database.ConnectionStringAsync());
        Assert.That(second.ExitCode, Is.EqualTo(0), second.Output);
        Assert.That(CountLines(second.Output), Is.EqualTo(CountLines(first.Output)).And.Not.Empty);
        Assert.That(second.Output, Does.Contain("archive mam: 0 records copied").And.Contain("archive offline: 0 records copied"));
        Assert.That(await ScalarAsync("SELECT count(*) FROM archive_mam"), Is.EqualTo(await ScalarAsync("SELECT count(DISTINCT (owner, stanza_id)) FROM archive_mam")));

        await using (var onPostgres = await TestServer.StartAsync(Folder("b"), TestServer.WithPostgres(await _database.ConnectionStringAsync())))
        {
            await VerifyAsync(onPostgres, ["offline 1", "offline 2"], stanzaIds);
            // Something new while on PostgreSQL, to come back with the next migration.
            await using var bob = await TestClient.ConnectAsync(onPostgres, "bob", "bob-pw", "phone", sendPresence: true);
            await bob.SendAsync("<message to='alice@localhost' type='chat' id='o3'><body>offline 3</body></message>");
            await bob.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        }

        // The keys of upload links and FAST tokens are not in the storage: the new data folder gets the old ones.
        var key = Path.Combine(Folder("b"), "data", "fast-token.key");
        if (!File.Exists(key)) await File.WriteAllBytesAsync(key, Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcdef"));
        var back = await MigrateAsync("postgresql", Path.Combine(Folder("b"), "data"), "embedded", Path.Combine(Folder("c"), "data"));
        Assert.That(back.ExitCode, Is.EqualTo(0), back.Output);
        Assert.That(back.Output, Does.Contain("every count matches").And.Contain("uploaded files stay in " + Path.Combine(Folder("b"), "data", "uploads")));
        Assert.That(await File.ReadAllBytesAsync(Path.Combine(Folder("c"), "data", "fast-token.key")), Is.EqualTo(await File.ReadAllBytesAsync(key)));
        await using (var embeddedAgain = await TestServer.StartAsync(Folder("c"), Embedded))
            // The offline messages delivered on PostgreSQL are not delivered again; the one left there is.
            await VerifyAsync(embeddedAgain, ["offline 3"], stanzaIds);
    }

    // Alice logs in with her password and finds her offline messages, roster, vCard, archive (by the same stanza ids)
    // and room.
    private async Task VerifyAsync(TestServer server, string[] offline, List<string> stanzaIds)
    {
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "laptop", sendPresence: true);
        foreach (var body in offline)
            Assert.That((await alice.ReceiveAsync(e => e.Name == "message" && e.Child("body", Ns.Client) is not null)).ChildText("body", Ns.Client), Is.EqualTo(body));
        await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(await alice.TryReceiveAsync(e => e.Name == "message" && e.Child("body", Ns.Client) is not null, TimeSpan.FromMilliseconds(300)), Is.Null,
            "no offline message twice");

        var roster = await alice.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        var item = roster.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).Single();
        Assert.That((item.Attr("jid"), item.Attr("name"), item.ChildText("group", Ns.Roster)), Is.EqualTo(("bob@localhost", "Bob", "Friends")));
        var vcard = await alice.IqAsync("<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
        Assert.That(vcard.ToString(), Does.Contain("Alice Liddell"));
        var blocked = await alice.IqAsync("<iq type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        Assert.That(blocked.ToString(), Does.Contain("spam@example.org"));

        var queryId = "q" + Interlocked.Increment(ref _queries);
        var fin = await alice.IqAsync($"<iq type='set'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'/></iq>", TimeSpan.FromSeconds(30));
        Assert.That(fin.Attr("type"), Is.EqualTo("result"), fin.ToString());
        var archived = new List<(string Id, string Body)>();
        while (await alice.TryReceiveAsync(e => e.Name == "message" && e.Child("result", Ns.Mam)?.Attr("queryid") == queryId, TimeSpan.FromMilliseconds(1)) is { } m)
        {
            var result = m.Child("result", Ns.Mam)!;
            archived.Add((result.Attr("id")!, result.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!.ChildText("body", Ns.Client)!));
        }
        Assert.That(archived.Take(3), Is.EqualTo(stanzaIds.Select((id, i) => (id, $"chat {i + 1}"))), "the archive keeps its order and its stanza ids");

        var items = await alice.IqAsync("<iq type='get' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(X.Matches(items, $"<iq><query xmlns='http://jabber.org/protocol/disco#items'><item jid='{Room}' name='Tea'/></query></iq>"), items.ToString());
        var self = await MucTestBase.JoinAsync(alice, Room, "Alice");
        Assert.That(self.Child("x", Ns.MucUser)!.Child("item", Ns.MucUser)!.Attr("affiliation"), Is.EqualTo("owner"));
        await alice.ReceiveAsync(e => e.ChildText("body", Ns.Client) == "kept in the room");
    }

    [Test]
    public async Task A_migration_killed_part_way_is_completed_by_the_next_run_without_duplicates()
    {
        var data = Path.Combine(Folder("a"), "data");
        var t0 = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        await using (var storage = new LiteDbStorage(data))
        {
            await storage.Accounts.CreateAsync(new Account("alice", [], t0));
            var writes = new List<Task>();
            foreach (var owner in new[] { "alice", "bob", "carol" })
                for (var i = 0; i < 1500; i++)
                    writes.Add(storage.Archive("mam").AppendAsync(owner, t0.AddSeconds(i), "dave@localhost",
                        Encoding.UTF8.GetBytes($"<message><body>{owner} {i}</body></message>"), $"{owner}-{i}").AsTask());
            // The spool's records carry no stanza id: its resume point is found by position.
            for (var i = 0; i < 1000; i++)
                writes.Add(storage.Archive("offline").AppendAsync("alice", t0.AddSeconds(i), "dave@localhost",
                    Encoding.UTF8.GetBytes($"<message><body>offline {i}</body></message>")).AsTask());
            await Task.WhenAll(writes);
        }
        var connectionString = await _database.ConnectionStringAsync();

        var killed = await MigrateAsync("embedded", data, "postgresql", connectionString, new() { [MigrateCommand.KillAfterVariable] = "2000" });
        Assert.That(killed.ExitCode, Is.Not.EqualTo(0), killed.Output);
        Assert.That(killed.Output, Does.Not.Contain("every count matches"));
        var partial = await ScalarAsync("SELECT count(*) FROM archive_mam");
        Assert.That(partial, Is.LessThan(4500));
        // Killed again, this time in the spool.
        var killedAgain = await MigrateAsync("embedded", data, "postgresql", connectionString,
            new() { [MigrateCommand.KillAfterVariable] = (4500 - partial + 500).ToString() });
        Assert.That(killedAgain.ExitCode, Is.Not.EqualTo(0), killedAgain.Output);
        Assert.That(await ScalarAsync("SELECT count(*) FROM archive_offline"), Is.LessThan(1000));

        var resumed = await MigrateAsync("embedded", data, "postgresql", connectionString);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.Output);
        Assert.That(resumed.Output, Does.Contain("every count matches"));
        foreach (var owner in new[] { "alice", "bob", "carol" })
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"SELECT stanza_id FROM archive_mam WHERE owner = '{owner}' ORDER BY id", connection);
            var ids = new List<string>();
            await using (var reader = await command.ExecuteReaderAsync())
                while (await reader.ReadAsync())
                    ids.Add(reader.GetString(0));
            Assert.That(ids, Is.EqualTo(Enumerable.Range(0, 1500).Select(i => $"{owner}-{i}")), owner + ": every record once, in order");
        }
        Assert.That(await ScalarAsync("SELECT count(*) FROM archive_offline"), Is.EqualTo(1000));
        Assert.That(await ScalarAsync("SELECT count(DISTINCT payload) FROM archive_offline"), Is.EqualTo(1000));
    }

    [Test]
    public async Task A_data_folder_held_by_a_running_server_is_refused()
    {
        await using var running = await TestServer.StartAsync(Folder("a"), Embedded);

        var refused = await MigrateAsync("embedded", running.DataDir, "postgresql", await _database.ConnectionStringAsync());

        Assert.That(refused.ExitCode, Is.EqualTo(1), refused.Output);
        Assert.That(refused.Output, Does.Contain($"the data folder {running.DataDir} is in use by PID {Environment.ProcessId}"));
        Assert.That(refused.Output, Does.Contain("nothing was changed").And.Not.Contain("migrating from"));
    }
}
