using System.Diagnostics;
using System.Text;
using LiteDB;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Tests.Storage;

// LiteDB-specific behaviour: the file, restarts, group commit under load.
[TestFixture]
public sealed class LiteDbStorageTests
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectories _directories = new();
    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = _directories.Create();

    [TearDown]
    public void DeleteDirectories() => _directories.DeleteAll();

    // Archives kept as LiteDB collections, as before the archive log (LogArchiveStoreTests covers the log).
    private LiteDbStorage WithLiteDbArchives() => new(_directory, new HashSet<string>());

    private static byte[] Body(int n) => Encoding.UTF8.GetBytes($"<message><body>{n}</body></message>");

    [Test]
    public async Task Database_file_is_created_in_the_data_directory()
    {
        await using (var storage = new LiteDbStorage(_directory))
            await storage.KeyValue.SetAsync("juliet", "k", new byte[] { 1 });

        Assert.That(File.Exists(Path.Combine(_directory, LiteDbStorage.FileName)), Is.True);
    }

    [Test]
    public async Task Accounts_survive_a_restart()
    {
        var account = AccountStoreContract.SampleAccount("juliet") with { LastLogout = T0, LastStatus = "away" };
        await using (var storage = new LiteDbStorage(_directory))
        {
            await storage.Accounts.CreateAsync(account);
            await storage.Accounts.CreateAsync(AccountStoreContract.SampleAccount("romeo"));
            await storage.Accounts.DeleteAsync("romeo");
        }

        await using var reopened = new LiteDbStorage(_directory);

        AccountStoreContract.AssertSameAccount(await reopened.Accounts.FindAsync("juliet"), account);
        Assert.That(await reopened.Accounts.ListAsync(), Is.EqualTo(new[] { "juliet" }));
    }

    [Test]
    public async Task Rosters_and_their_versions_survive_a_restart()
    {
        string version;
        await using (var storage = new LiteDbStorage(_directory))
        {
            await storage.Rosters.SetItemAsync("juliet", RosterStoreContract.Contact("romeo@montague.lit"));
            await storage.Rosters.SetItemAsync("juliet", RosterStoreContract.Contact("nurse@capulet.lit") with { InRoster = false, PendingIn = true });
            version = (await storage.Rosters.RemoveItemAsync("juliet", "romeo@montague.lit"))!;
        }

        await using var reopened = new LiteDbStorage(_directory);

        var roster = await reopened.Rosters.GetAsync("juliet");
        Assert.That(roster.Version, Is.EqualTo(version));
        Assert.That(roster.Items.Single().Jid, Is.EqualTo("nurse@capulet.lit"));
        Assert.That(roster.Items.Single().PendingIn, Is.True);
        Assert.That(long.Parse(await reopened.Rosters.SetItemAsync("juliet", RosterStoreContract.Contact("a@lit"))), Is.GreaterThan(long.Parse(version)));
    }

    [Test]
    public async Task Key_value_documents_survive_a_restart()
    {
        await using (var storage = new LiteDbStorage(_directory))
        {
            await storage.KeyValue.SetAsync("juliet", "vcard", Body(1));
            await storage.KeyValue.SetAsync("juliet", "gone", Body(2));
            await storage.KeyValue.DeleteAsync("juliet", "gone");
        }

        await using var reopened = new LiteDbStorage(_directory);

        Assert.That(await reopened.KeyValue.GetAsync("juliet", "vcard"), Is.EqualTo(Body(1)));
        Assert.That(await reopened.KeyValue.GetAsync("juliet", "gone"), Is.Null);
    }

    [Test]
    public async Task Archive_records_and_the_id_sequence_survive_a_restart()
    {
        long last;
        await using (var storage = new LiteDbStorage(_directory))
        {
            var archive = storage.Archive("offline");
            await archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(1), "s1");
            last = await archive.AppendAsync("juliet", T0.AddSeconds(1), "romeo@montague.lit", Body(2), "s2");
            // Emptying the owner must not let the next start reuse ids.
            await archive.AppendAsync("romeo", T0, "juliet@capulet.lit", Body(3));
            last = await archive.AppendAsync("romeo", T0, "juliet@capulet.lit", Body(4));
            await archive.DeleteAllAsync("romeo");
        }

        await using var reopened = new LiteDbStorage(_directory);

        var page = await reopened.Archive("offline").QueryAsync(new ArchiveQuery("juliet"));
        Assert.That(page.Records.Select(r => r.StanzaId), Is.EqualTo(new[] { "s1", "s2" }));
        Assert.That(page.Records[1].Payload, Is.EqualTo(Body(2)));
        Assert.That(await reopened.Archive("offline").AppendAsync("juliet", T0, "romeo@montague.lit", Body(5)), Is.GreaterThan(last));
    }

    [Test]
    public async Task Archive_collections_get_owner_with_stamp_and_stanza_id_indexes()
    {
        await using var storage = WithLiteDbArchives();
        await storage.Archive("offline").AppendAsync("juliet", T0, "romeo@montague.lit", Body(1));
        await storage.FlushAsync();

        var indexes = storage.Database.GetCollection("$indexes").Find("collection = 'archive_offline'")
            .Select(d => d["name"].AsString).ToArray();

        Assert.That(indexes, Is.SupersetOf(new[] { "ownerKey", "withKey", "stampKey", "sidKey" }));
    }

    [Test]
    public async Task Archive_records_written_before_the_stamp_and_ordinal_keys_existed_are_rekeyed_on_open()
    {
        await using (var storage = WithLiteDbArchives())
        {
            // The layout of the first archive version: ownerKey = owner|id, withKey = owner|with|id, no stampKey or sidKey.
            var records = storage.Database.GetCollection("archive_offline");
            for (var id = 1L; id <= 3; id++)
            {
                var owner = id == 2 ? "romeo" : "juliet";
                records.Insert(new LiteDB.BsonDocument
                {
                    ["_id"] = id, ["owner"] = owner, ["with"] = "nurse@capulet.lit", ["stamp"] = T0.AddMinutes(id).UtcTicks,
                    ["payload"] = Body((int)id), ["stanzaId"] = "s" + id,
                    ["ownerKey"] = owner + "\u0001" + id.ToString("D19"),
                    ["withKey"] = owner + "\u0001nurse@capulet.lit\u0001" + id.ToString("D19"),
                });
            }
            storage.Database.GetCollection("sequences").Upsert(new LiteDB.BsonDocument { ["_id"] = "offline", ["last"] = 3L });
        }

        await using var reopened = WithLiteDbArchives();
        var archive = reopened.Archive("offline");
        var fourth = await archive.AppendAsync("juliet", T0, "nurse@capulet.lit", Body(4), "s4");

        var page = await archive.QueryAsync(new ArchiveQuery("juliet", With: "nurse@capulet.lit"));
        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(new[] { 1L, 3L, fourth }));
        Assert.That(page.TotalCount, Is.EqualTo(3));
        Assert.That(page.Records[2].Stamp, Is.EqualTo(T0.AddMinutes(3)), "the new record's stamp is raised to the newest old one");
        Assert.That(await archive.CountAsync("juliet"), Is.EqualTo(3));
        Assert.That(await archive.FindIdAsync("juliet", "s3"), Is.EqualTo(3));
        Assert.That((await archive.QueryAsync(new ArchiveQuery("juliet", Start: T0.AddMinutes(2)))).Records.Select(r => r.Id), Is.EqualTo(new[] { 3L, fourth }));
    }

    [Test]
    public async Task Dispose_commits_everything_still_queued()
    {
        Task<long>[] appends;
        await using (var storage = new LiteDbStorage(_directory))
        {
            var archive = storage.Archive("offline");
            appends = Enumerable.Range(0, 300).Select(n => archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(n)).AsTask()).ToArray();
        }

        Assert.That(appends.All(a => a.IsCompletedSuccessfully), Is.True);
        await using var reopened = new LiteDbStorage(_directory);
        Assert.That(await reopened.Archive("offline").CountAsync("juliet"), Is.EqualTo(300));
    }

    [Test]
    public async Task Five_thousand_concurrent_appends_are_all_stored_once_with_increasing_ids()
    {
        const int Writers = 50, PerWriter = 100;
        long[] ids;
        long commits;
        var clock = Stopwatch.StartNew();
        await using (var storage = WithLiteDbArchives())
        {
            var archive = storage.Archive("offline");
            var perWriter = await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                var mine = new long[PerWriter];
                for (var i = 0; i < PerWriter; i++)
                    mine[i] = await archive.AppendAsync($"user{w % 7}", T0.AddSeconds(i), $"peer{w}@lit", Body(w * PerWriter + i), $"w{w}-{i}");
                return mine;
            })));
            clock.Stop();
            commits = storage.Commits;
            ids = perWriter.SelectMany(m => m).ToArray();
            foreach (var mine in perWriter)
                Assert.That(mine, Is.Ordered.Ascending, "one writer's awaited appends get increasing ids");
        }

        await using var reopened = WithLiteDbArchives();
        var stored = new List<ArchiveRecord>();
        for (var owner = 0; owner < 7; owner++)
            stored.AddRange((await reopened.Archive("offline").QueryAsync(new ArchiveQuery($"user{owner}", Max: 10_000))).Records);

        Assert.That(ids, Has.Length.EqualTo(Writers * PerWriter).And.Unique);
        Assert.That(stored.Select(r => r.Id).Order(), Is.EqualTo(ids.Order()));
        Assert.That(stored.Select(r => Encoding.UTF8.GetString(r.Payload)).Distinct().Count(), Is.EqualTo(Writers * PerWriter));
        Assert.That(commits, Is.LessThan(Writers * PerWriter / 5), "appends are grouped into few commits");
        TestContext.Out.WriteLine($"{Writers * PerWriter} appends from {Writers} tasks: {clock.Elapsed.TotalMilliseconds:F0} ms, " +
            $"{Writers * PerWriter / clock.Elapsed.TotalSeconds:F0} appends/s, {commits} commits");
    }

    [Test]
    public async Task One_by_one_appends_each_pay_for_a_commit()
    {
        const int Count = 200;
        await using var storage = WithLiteDbArchives();
        var archive = storage.Archive("offline");
        await storage.FlushAsync();
        var commitsBefore = storage.Commits;

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Count; i++)
            await archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(i));
        clock.Stop();

        Assert.That(storage.Commits - commitsBefore, Is.EqualTo(Count));
        TestContext.Out.WriteLine($"{Count} appends awaited one by one: {clock.Elapsed.TotalMilliseconds:F0} ms, " +
            $"{Count / clock.Elapsed.TotalSeconds:F0} appends/s");
    }

    // LiteDB 5 fails a read of a collection that another transaction is creating at that moment ("page type must be
    // collection page", litedb-org/LiteDB#2792) and then closes its engine, so every later write fails too. Seen as
    // `xmppd migrate --to embedded` failing under load: the migration reads the target's stores while the writer
    // creates their collections. Readers run from the first moment a fresh storage exists and an archive store is
    // handed out, while the first writes create what they write to.
    [Test]
    public async Task Reads_while_the_first_writes_run_on_a_fresh_database_never_break_it()
    {
        for (var round = 0; round < 15; round++)
        {
            var directory = _directories.Create();
            await using var storage = new LiteDbStorage(directory, new HashSet<string>());
            using var stop = new CancellationTokenSource();
            var readers = Enumerable.Range(0, 3).Select(n => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await storage.KeyValue.GetAsync("juliet", "k");
                    await storage.Accounts.FindAsync("juliet");
                    await storage.Rosters.GetAsync("juliet");
                    await storage.Uploads.UsedBytesAsync("juliet");
                    await storage.Archive("requests").CountAsync("juliet");
                }
            })).ToArray();
            await Task.Delay(2);
            var archive = storage.Archive("requests");
            await Task.WhenAll(
                storage.KeyValue.SetAsync("juliet", "k", new byte[] { 1 }).AsTask(),
                storage.Accounts.CreateAsync(AccountStoreContract.SampleAccount("juliet")).AsTask(),
                storage.Rosters.SetItemAsync("juliet", RosterStoreContract.Contact("romeo@montague.lit")).AsTask(),
                archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(round)).AsTask());
            stop.Cancel();
            await Task.WhenAll(readers);

            Assert.That(await storage.KeyValue.GetAsync("juliet", "k"), Is.EqualTo(new byte[] { 1 }), $"round {round}");
            await storage.KeyValue.SetAsync("juliet", "k2", new byte[] { 2 });
            Assert.That(await archive.CountAsync("juliet"), Is.EqualTo(1), $"round {round}");
        }
    }
}
