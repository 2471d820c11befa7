using System.Text;
using Npgsql;
using Xmpp.Storage;
using Xmpp.Storage.Postgres;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

/// What the PostgreSQL storage promises beyond the store contracts: its schema and migrations, the indexes MAM
/// queries rely on, deletion by mark and background purge, and group commit.
[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresStorageTests
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly PostgresTestDatabase _database = new("storage");
    private PostgresStorage _storage = null!;

    [SetUp]
    public async Task Open() => _storage = await _database.OpenFreshAsync(purgeInterval: TimeSpan.Zero);

    [TearDown]
    public async Task Close() => await _storage.DisposeAsync();

    private static byte[] Body(int n) => Encoding.UTF8.GetBytes($"<message><body>{n}</body></message>");

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(await _database.ConnectionStringAsync());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private async Task<string> PlanAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(await _database.ConnectionStringAsync());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("EXPLAIN " + sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var plan = new StringBuilder();
        while (await reader.ReadAsync()) plan.AppendLine(reader.GetString(0));
        return plan.ToString();
    }

    [Test]
    public async Task The_schema_is_recorded_at_the_version_this_server_knows()
    {
        Assert.That(await ScalarAsync<int>("SELECT max(version) FROM schema_version"), Is.EqualTo(PostgresSchema.Version));
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM schema_version"), Is.EqualTo(PostgresSchema.Version), "one row per migration");
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_collections WHERE name IN ('offline', 'mam', 'muc')"), Is.EqualTo(3));
    }

    [Test]
    public async Task Opening_again_applies_no_migration_twice_and_keeps_the_data()
    {
        await _storage.KeyValue.SetAsync("juliet", "vcard", Body(1));
        await _storage.DisposeAsync();

        _storage = await PostgresStorage.OpenAsync(await _database.ConnectionStringAsync());

        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM schema_version"), Is.EqualTo(PostgresSchema.Version));
        Assert.That(await _storage.KeyValue.GetAsync("juliet", "vcard"), Is.EqualTo(Body(1)));
    }

    [Test]
    public async Task A_schema_newer_than_the_server_knows_is_refused_with_a_clear_message()
    {
        var newer = PostgresSchema.Version + 1;
        await ScalarAsync<object>($"INSERT INTO schema_version (version) VALUES ({newer}) RETURNING version");

        var error = Assert.ThrowsAsync<StorageOpenException>(async () => await PostgresStorage.OpenAsync(await _database.ConnectionStringAsync()));

        Assert.That(error!.Message, Does.Contain($"version {newer}").And.Contain($"({PostgresSchema.Version})").And.Contain("newer"));
        await ScalarAsync<object>($"DELETE FROM schema_version WHERE version = {newer} RETURNING version");
    }

    [Test]
    public async Task An_unreachable_server_is_refused_in_one_line_without_the_password()
    {
        var connectionString = $"Host=127.0.0.1;Port={TestServer.FreePort()};Username=postgres;Password=sekrit-pw;Database=x;Timeout=3";

        var error = Assert.ThrowsAsync<StorageOpenException>(async () => await PostgresStorage.OpenAsync(connectionString));

        Assert.That(error!.Message, Does.StartWith("cannot use PostgreSQL at 127.0.0.1:"));
        Assert.That(error.Message, Does.Not.Contain("sekrit-pw"));
        Assert.That(PostgresStorage.Describe(connectionString), Does.Not.Contain("sekrit-pw"));
    }

    [Test]
    public async Task Archive_queries_that_mam_makes_are_served_by_indexes()
    {
        // 30,000 rows over 30 owners, written straight in SQL (the writer is tested elsewhere), then analyzed so the
        // planner sees a table where a sequential scan would be the slow choice.
        await ScalarAsync<object>("""
            INSERT INTO archive_mam (owner, id, stamp, peer, stanza_id, origin_id, payload, ordinal)
            SELECT 'user' || (n % 30), n, 638000000000000000 + n::bigint * 10000000, 'peer' || (n % 7), 'sid' || n, 'oid' || n, '\x00'::bytea,
                   n / 30 + 1
            FROM generate_series(1, 30000) n;
            ANALYZE archive_mam;
            SELECT 1
            """);
        var mark = "COALESCE((SELECT through FROM archive_marks WHERE collection = 'mam' AND owner = 'user5'), 0)";
        (string Sql, string Index)[] queries =
        [
            // the latest page (XEP-0313 with RSM <before/>)
            ($"SELECT * FROM archive_mam a WHERE a.owner = 'user5' AND a.id > {mark} ORDER BY a.id DESC LIMIT 51", "archive_mam_pkey"),
            // with a peer
            ($"SELECT * FROM archive_mam a WHERE a.owner = 'user5' AND a.id > {mark} AND a.peer = 'peer3' ORDER BY a.id DESC LIMIT 51", "archive_mam_peer"),
            // a time range: a range of ids, each end found by a binary search of the primary key (migration 5)
            ($"SELECT * FROM archive_mam a WHERE a.owner = 'user5' AND a.id > {mark} AND a.id >= {FirstIdWhere(">= 638000000500000000")} " +
             $"AND a.id < {FirstIdWhere("> 638000000600000000")} ORDER BY a.id LIMIT 51", "archive_mam_pkey"),
            // a stanza id (XEP-0359)
            ($"SELECT a.id FROM archive_mam a WHERE a.owner = 'user5' AND a.stanza_id = 'sid505' AND a.id > {mark} ORDER BY a.id DESC LIMIT 1", "archive_mam_stanza_id"),
            // an origin id (XEP-0359), as FindIdByOriginIdAsync asks
            ($"SELECT a.id FROM archive_mam a WHERE a.owner = 'user5' AND a.origin_id = 'oid505' AND a.id > {mark} ORDER BY a.id DESC LIMIT 1", "archive_mam_origin_id"),
        ];
        foreach (var (sql, index) in queries)
        {
            var plan = await PlanAsync(sql);
            Assert.That(plan, Does.Not.Contain("Seq Scan on archive_mam"), plan);
            Assert.That(plan, Does.Match($"(using|Index Scan on) {index}"), plan);
        }
    }

    private string FirstIdWhere(string comparison) =>
        ((PostgresArchiveStore)_storage.Archive("mam")).FirstIdWhere(comparison).Replace("$1", "'user5'");

    [Test]
    public async Task Start_and_end_find_the_same_records_as_a_scan_of_the_stamps()
    {
        // Three owners interleaved, ids with gaps, and stamps that stay equal over runs of rows (as the insert's raising
        // makes them): every bound the binary search can meet, compared with a plain filter on the stamp column.
        await ScalarAsync<object>("""
            INSERT INTO archive_mam (owner, id, stamp, peer, stanza_id, payload, ordinal)
            SELECT 'user' || (n % 3), n * 7 + n % 5, 638000000000000000 + (n / 15)::bigint * 10000000, 'peer', 'sid' || n, '\x00'::bytea, n / 3 + 1
            FROM generate_series(1, 3000) n;
            SELECT setval('archive_mam_ids', 30000);
            SELECT 1
            """);
        var archive = _storage.Archive("mam");
        const long t = 638000000000000000;
        long[] bounds = [t - 1, t, t + 1, t + 10000000, t + 57 * 10000000L, t + 57 * 10000000L + 1, t + 199 * 10000000L, t + 200 * 10000000L, t + 10000 * 10000000L];
        foreach (var owner in new[] { "user0", "user1", "user2" })
        foreach (var start in bounds.Prepend(-1))
        foreach (var end in bounds.Prepend(-1))
        {
            var condition = (start < 0 ? "" : $" AND stamp >= {start}") + (end < 0 ? "" : $" AND stamp <= {end}");
            var expected = await ScalarAsync<long[]>(
                $"SELECT COALESCE(array_agg(id ORDER BY id), '{{}}') FROM archive_mam WHERE owner = '{owner}'{condition}");
            var page = await archive.QueryAsync(new ArchiveQuery(owner, Max: 5000,
                Start: start < 0 ? null : new DateTimeOffset(start, TimeSpan.Zero), End: end < 0 ? null : new DateTimeOffset(end, TimeSpan.Zero)));
            Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(expected), $"{owner}{condition}");
            Assert.That(page.TotalCount, Is.EqualTo(expected.Length), $"{owner}{condition}");
        }
    }

    [Test]
    public async Task Every_archive_table_has_the_indexes_of_owner_peer_stanza_id_and_origin_id_and_none_of_time()
    {
        _ = _storage.Archive("later"); // a collection whose table is made after the migrations
        foreach (var table in new[] { "archive_offline", "archive_mam", "archive_muc", "archive_later" })
        {
            var definitions = await ScalarAsync<string>($"SELECT string_agg(indexdef, E'\\n') FROM pg_indexes WHERE tablename = '{table}'");
            Assert.That(definitions, Does.Contain($"{table}_pkey ON public.{table} USING btree (owner, id)"));
            // Migration 5: time bounds are found along the primary key.
            Assert.That(definitions, Does.Not.Contain($"{table}_stamp"));
            Assert.That(definitions, Does.Contain($"{table}_peer ON public.{table} USING btree (owner, peer, id)"));
            Assert.That(definitions, Does.Contain($"{table}_stanza_id ON public.{table} USING btree (owner, stanza_id, id) WHERE (stanza_id IS NOT NULL)"));
            Assert.That(definitions, Does.Contain($"{table}_origin_id ON public.{table} USING btree (owner, origin_id, id) WHERE (origin_id IS NOT NULL)"));
        }
    }

    private static byte[] WithOriginId(string originId, int n) => Encoding.UTF8.GetBytes(
        $"<message xmlns=\"jabber:client\" id=\"m{n}\"><body>{n}</body><origin-id xmlns=\"urn:xmpp:sid:0\" id=\"{originId}\"/></message>");

    [Test]
    public async Task Origin_ids_are_read_from_the_payload_and_found_by_the_index()
    {
        var archive = (PostgresArchiveStore)_storage.Archive("mam");
        var first = await archive.AppendAsync("juliet", T0, "romeo@montague.lit", WithOriginId("o-1", 1), "s-1");
        var second = await archive.AppendAsync("juliet", T0, "romeo@montague.lit", WithOriginId("a&amp;b&quot;c", 2), "s-2");
        await archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(3), "s-3");
        await archive.AppendAsync("romeo", T0, "juliet@capulet.lit", WithOriginId("o-1", 4), "s-4");

        Assert.That(await archive.FindIdByOriginIdAsync("juliet", "o-1"), Is.EqualTo(first));
        Assert.That(await archive.FindIdByOriginIdAsync("juliet", "a&b\"c"), Is.EqualTo(second), "entities in the attribute are decoded");
        Assert.That(await archive.FindIdByOriginIdAsync("juliet", "s-1"), Is.Null);
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_mam WHERE origin_id IS NULL"), Is.EqualTo(1));
        await archive.DeleteThroughAsync("juliet", first);
        Assert.That(await archive.FindIdByOriginIdAsync("juliet", "o-1"), Is.Null, "deleted records are not found");
    }

    [Test]
    public async Task Migration_2_adds_origin_ids_to_the_records_stored_before_it()
    {
        var id = await _storage.Archive("mam").AppendAsync("juliet", T0, "romeo@montague.lit", WithOriginId("before-upgrade", 1), "s-1");
        await _storage.DisposeAsync();
        // Back to version 1: the column, its index, version 3's table and the migrations' rows gone.
        await ScalarAsync<object>("""
            ALTER TABLE archive_mam DROP COLUMN origin_id; ALTER TABLE archive_offline DROP COLUMN origin_id; ALTER TABLE archive_muc DROP COLUMN origin_id;
            DROP TABLE muc_room_epochs;
            DELETE FROM schema_version WHERE version >= 2;
            SELECT 1
            """);

        _storage = await PostgresStorage.OpenAsync(await _database.ConnectionStringAsync());

        Assert.That(await ScalarAsync<int>("SELECT max(version) FROM schema_version"), Is.EqualTo(PostgresSchema.Version));
        Assert.That(await ((PostgresArchiveStore)_storage.Archive("mam")).FindIdByOriginIdAsync("juliet", "before-upgrade"), Is.EqualTo(id));
    }

    [Test]
    public async Task A_version_3_database_with_archived_messages_is_upgraded_in_place_and_still_answers_every_query()
    {
        // A database as a version-3 server left it: its own migrations, then rows as its insert wrote them (an
        // ordinal and a per-peer ordinal each, random version-4 UUIDs as stanza ids) and a deletion mark.
        var old = new PostgresTestDatabase("v3upgrade");
        var connectionString = await old.ConnectionStringAsync();
        await using (var source = NpgsqlDataSource.Create(connectionString))
            await PostgresSchema.MigrateAsync(source, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, upTo: 3);
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var fill = new NpgsqlCommand($"""
                INSERT INTO archive_mam (owner, id, stamp, peer, stanza_id, origin_id, payload, ordinal, peer_ordinal)
                SELECT 'juliet', n, {T0.UtcTicks} + n * 10000000::bigint, p, md5('old' || n)::uuid::text, NULL,
                       convert_to('<message><body>' || n || '</body></message>', 'UTF8'),
                       n, row_number() OVER (PARTITION BY p ORDER BY n)
                FROM (SELECT n, CASE WHEN n % 3 = 0 THEN 'romeo@montague.lit' ELSE 'nurse@capulet.lit' END AS p
                      FROM generate_series(1, 30) n) s;
                SELECT setval('archive_mam_ids', 30);
                INSERT INTO archive_marks (collection, owner, through) VALUES ('mam', 'juliet', 4);
                """, connection);
            await fill.ExecuteNonQueryAsync();
        }
        async Task<T> Scalar<T>(string sql)
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            return (T)(await command.ExecuteScalarAsync())!;
        }
        string OldId(int n) => new Guid(System.Security.Cryptography.MD5.HashData(Encoding.UTF8.GetBytes("old" + n)), bigEndian: true).ToString("D");
        Assert.That(await Scalar<string>("SELECT stanza_id FROM archive_mam WHERE id = 20"), Is.EqualTo(OldId(20)), "the test's own id form");

        await using var storage = await PostgresStorage.OpenAsync(connectionString, purgeInterval: TimeSpan.Zero);
        var mam = storage.Archive("mam");

        Assert.That(await Scalar<int>("SELECT max(version) FROM schema_version"), Is.EqualTo(PostgresSchema.Version));
        Assert.That(await Scalar<long>("SELECT count(*) FROM information_schema.columns WHERE column_name = 'peer_ordinal'"), Is.Zero);
        Assert.That(await Scalar<long>("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'archive_%_stamp'"), Is.Zero, "migration 5");
        var range = await mam.QueryAsync(new ArchiveQuery("juliet", Start: T0.AddSeconds(10), End: T0.AddSeconds(12)));
        Assert.That(range.Records.Select(r => r.Id), Is.EqualTo(new long[] { 10, 11, 12 }), "a time range without the stamp index");
        Assert.That(range.TotalCount, Is.EqualTo(3));
        Assert.That(await mam.CountAsync("juliet"), Is.EqualTo(26), "ids 5..30: the mark still hides 1..4");
        var latest = await mam.QueryAsync(new ArchiveQuery("juliet", Max: 5, Reverse: true));
        Assert.That(latest.Records.Select(r => r.Id), Is.EqualTo(new long[] { 26, 27, 28, 29, 30 }));
        Assert.That(latest.TotalCount, Is.EqualTo(26));
        Assert.That(latest.Records[^1].StanzaId, Is.EqualTo(OldId(30)));
        var withRomeo = await mam.QueryAsync(new ArchiveQuery("juliet", With: "romeo@montague.lit", Max: 3));
        Assert.That(withRomeo.Records.Select(r => r.Id), Is.EqualTo(new long[] { 6, 9, 12 }));
        Assert.That(withRomeo.TotalCount, Is.EqualTo(9), "6, 9 ... 30");
        Assert.That(await mam.FindIdAsync("juliet", OldId(20)), Is.EqualTo(20));
        Assert.That(await mam.FindIdAsync("juliet", OldId(3)), Is.Null, "below the mark");
        var byIds = await mam.QueryAsync(new ArchiveQuery("juliet", StanzaIds: [OldId(3), OldId(20), OldId(21)]));
        Assert.That(byIds.Records.Select(r => r.Id), Is.EqualTo(new long[] { 20, 21 }));
        var after = await mam.QueryAsync(new ArchiveQuery("juliet", AfterId: await mam.FindIdAsync("juliet", OldId(28)), Max: 10));
        Assert.That(after.Records.Select(r => r.Id), Is.EqualTo(new long[] { 29, 30 }));

        // New records continue the old ones: ids, ordinals (so counts) and stamps.
        var added = await mam.AppendAsync("juliet", T0, "romeo@montague.lit", Body(31), "0190f4a2-7c1e-7abc-8def-0123456789ab");
        Assert.That(added, Is.EqualTo(31));
        Assert.That(await mam.CountAsync("juliet"), Is.EqualTo(27));
        Assert.That((await mam.QueryAsync(new ArchiveQuery("juliet", With: "romeo@montague.lit", Max: 0))).TotalCount, Is.EqualTo(10));
        var newest = await mam.QueryAsync(new ArchiveQuery("juliet", Max: 1, Reverse: true));
        Assert.That(newest.Records[0].Stamp, Is.EqualTo(T0.AddSeconds(30)), "an earlier stamp is raised to the newest stored one");
        Assert.That(await mam.FindIdAsync("juliet", "0190f4a2-7c1e-7abc-8def-0123456789ab"), Is.EqualTo(31));
    }

    [Test]
    public async Task Delete_through_moves_a_mark_and_the_purge_removes_the_rows_later()
    {
        var spool = _storage.Archive("offline");
        var ids = new List<long>();
        for (var n = 0; n < 10; n++)
            ids.Add(await spool.AppendAsync("juliet", T0, "romeo@montague.lit", Body(n)));
        await spool.AppendAsync("romeo", T0, "juliet@capulet.lit", Body(99));

        Assert.That(await spool.DeleteThroughAsync("juliet", ids[5]), Is.EqualTo(6));

        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_offline"), Is.EqualTo(11), "only the mark moved");
        Assert.That(await spool.CountAsync("juliet"), Is.EqualTo(4));
        Assert.That(await spool.ReplaceAsync("juliet", ids[2], Body(42)), Is.False, "a deleted record cannot be replaced");
        Assert.That(await spool.FindIdAsync("juliet", "none"), Is.Null);

        Assert.That(await _storage.PurgeAsync(), Is.EqualTo(6));
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_offline"), Is.EqualTo(5));
        Assert.That(await _storage.PurgeAsync(), Is.Zero, "a purged mark is not visited again");
        var left = await spool.QueryAsync(new ArchiveQuery("juliet"));
        Assert.That(left.Records.Select(r => r.Id), Is.EqualTo(ids[6..]));
        Assert.That(left.TotalCount, Is.EqualTo(4));
    }

    [Test]
    public async Task Delete_all_hides_everything_the_owner_had_and_new_records_still_appear()
    {
        var mam = _storage.Archive("mam");
        for (var n = 0; n < 5; n++)
            await mam.AppendAsync("juliet", T0, "romeo@montague.lit", Body(n));

        await mam.DeleteAllAsync("juliet");
        var later = await mam.AppendAsync("juliet", T0, "romeo@montague.lit", Body(7));

        Assert.That((await mam.QueryAsync(new ArchiveQuery("juliet"))).Records.Select(r => r.Id), Is.EqualTo(new[] { later }));
        Assert.That(await _storage.PurgeAsync(), Is.EqualTo(5));
        Assert.That(await mam.CountAsync("juliet"), Is.EqualTo(1));
    }

    [Test]
    public async Task Counts_taken_from_ordinals_agree_with_the_records_after_deletions_purges_and_more_appends()
    {
        var mam = _storage.Archive("mam");
        var random = new Random(16);
        string[] peers = ["romeo@lit", "nurse@lit", "tybalt@lit"];
        async Task AppendSome(int count)
        {
            // Queued together, so runs of one owner and peer share multi-row inserts; stamps now and then go back.
            await Task.WhenAll(Enumerable.Range(0, count).Select(_ => mam.AppendAsync(
                random.Next(4) == 0 ? "romeo" : "juliet", T0.AddMinutes(random.Next(1000)), peers[random.Next(3)], Body(1)).AsTask()));
        }
        await AppendSome(300);
        var all = (await mam.QueryAsync(new ArchiveQuery("juliet", Max: 1000))).Records;
        await mam.DeleteThroughAsync("juliet", all[all.Count / 3].Id);
        await _storage.PurgeAsync();
        await AppendSome(200);

        var records = (await mam.QueryAsync(new ArchiveQuery("juliet", Max: 1000))).Records;
        var middle = records[records.Count / 2].Stamp;
        ArchiveQuery[] queries =
        [
            new("juliet"), new("juliet", With: "nurse@lit"), new("juliet", Start: middle), new("juliet", End: middle),
            new("juliet", With: "tybalt@lit", Start: records[10].Stamp, End: middle), new("juliet", Start: T0.AddDays(9)),
        ];
        foreach (var query in queries)
        {
            var expected = records.Count(r => (query.With is null || r.With == query.With)
                                              && (query.Start is null || r.Stamp >= query.Start) && (query.End is null || r.Stamp <= query.End));
            Assert.That((await mam.QueryAsync(query with { Max = 5 })).TotalCount, Is.EqualTo(expected), query.ToString());
        }
        Assert.That(await mam.CountAsync("juliet"), Is.EqualTo(records.Count));
        Assert.That(records.Select(r => r.Stamp), Is.Ordered, "time order is id order");
    }

    [Test]
    public async Task Appends_queued_together_share_a_few_commits_not_one_each()
    {
        var mam = _storage.Archive("mam");
        var before = _storage.Commits;

        var appends = Enumerable.Range(0, 2000).Select(n => mam.AppendAsync("user" + n % 20, T0, "peer@lit", Body(n)).AsTask()).ToList();
        await Task.WhenAll(appends);

        var commits = _storage.Commits - before;
        Assert.That(commits, Is.LessThanOrEqualTo(20), $"2,000 appends took {commits} commits");
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_mam"), Is.EqualTo(2000));
    }

    [Test]
    public async Task Flush_completes_once_every_write_queued_before_it_is_committed()
    {
        var spool = _storage.Archive("offline");
        for (var n = 0; n < 500; n++)
            _ = spool.AppendAsync("juliet", T0.AddSeconds(n), "romeo@montague.lit", Body(n));
        _ = _storage.KeyValue.SetAsync("juliet", "vcard", Body(1));
        Assert.That(_storage.PendingWrites, Is.GreaterThan(0));

        await _storage.FlushAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(_storage.PendingWrites, Is.Zero);
        // Read on a connection of its own: committed, not merely visible to the writer.
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_offline WHERE owner = 'juliet'"), Is.EqualTo(500));
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM kv WHERE owner = 'juliet'"), Is.EqualTo(1));
    }

    [Test]
    public async Task Flushes_asked_while_the_writer_is_busy_share_one_task_which_waits_for_every_write_before_them()
    {
        // The writer is held inside a group: its write to kv waits for a lock another connection holds.
        await using var blocker = new NpgsqlConnection(await _database.ConnectionStringAsync());
        await blocker.OpenAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE kv IN ACCESS EXCLUSIVE MODE", blocker))
            await lockTable.ExecuteNonQueryAsync();
        var held = _storage.KeyValue.SetAsync("juliet", "vcard", Body(1)).AsTask();
        for (var i = 0; i < 200 && await ScalarAsync<long>(
                 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 0; i++)
            await Task.Delay(25);
        var mam = _storage.Archive("mam");

        _ = mam.AppendAsync("juliet", T0, "romeo@montague.lit", Body(1));
        var first = _storage.FlushAsync();
        _ = mam.AppendAsync("juliet", T0, "romeo@montague.lit", Body(2));
        var second = _storage.FlushAsync();

        // XEP-0198 acks asked during one group wait on one task (StreamManagementSession merges them).
        Assert.That(second, Is.SameAs(first));
        await Task.Delay(100);
        Assert.That(first.IsCompleted, Is.False, "the writer is still held");
        await transaction.CommitAsync();
        await first.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(held.IsCompletedSuccessfully, Is.True);
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_mam WHERE owner = 'juliet'"), Is.EqualTo(2));
    }

    [Test]
    public async Task A_flush_after_a_refused_last_write_waits_for_the_good_writes_queued_before_it()
    {
        var mam = _storage.Archive("mam");
        for (var n = 0; n < 50; n++)
            _ = mam.AppendAsync("juliet", T0, "romeo@montague.lit", Body(n));
        var refused = mam.AppendAsync("juliet", T0, "bad\0peer", Body(99)).AsTask();

        await _storage.FlushAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM archive_mam WHERE owner = 'juliet'"), Is.EqualTo(50));
        Assert.That(refused.IsFaulted, Is.True);
    }

    [Test]
    public async Task A_write_the_database_refuses_fails_alone_and_the_rest_of_its_group_is_stored()
    {
        var mam = _storage.Archive("mam");
        // PostgreSQL text cannot hold U+0000: this append is refused inside a group of good ones.
        var appends = Enumerable.Range(0, 10)
            .Select(n => mam.AppendAsync("juliet", T0, n == 5 ? "bad\0peer" : "romeo@montague.lit", Body(n)).AsTask()).ToList();
        var document = _storage.KeyValue.SetAsync("juliet", "vcard", Body(1)).AsTask();

        await Task.WhenAll(appends.Select(a => a.ContinueWith(_ => { }))).WaitAsync(TimeSpan.FromSeconds(30));
        await document;

        Assert.That(appends.Count(a => a.IsFaulted), Is.EqualTo(1));
        Assert.That(appends[5].IsFaulted, Is.True);
        var page = await mam.QueryAsync(new ArchiveQuery("juliet"));
        Assert.That(page.Records.Select(r => Encoding.UTF8.GetString(r.Payload)), Has.None.Contains("<body>5<"));
        Assert.That(page.TotalCount, Is.EqualTo(9));
        Assert.That(await _storage.KeyValue.GetAsync("juliet", "vcard"), Is.EqualTo(Body(1)));
    }
}
