using System.Diagnostics;
using System.Text;
using Npgsql;
using Xmpp.Storage;
using Xmpp.Storage.Postgres;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

/// Figures for issue 16's targets, run by hand (Explicit): the latest-50 MAM page of an owner with 1,000,000 archived
/// messages, and queued appends per second through the writer. They print, they do not judge: the machine is shared.
[TestFixture]
[Explicit("a measurement, run by hand")]
[Category("PostgreSql")]
public sealed class PostgresArchiveMeasurements
{
    private readonly PostgresTestDatabase _database = new("measure");

    [Test]
    public async Task Latest_page_of_a_million_message_archive()
    {
        await using var storage = await _database.OpenFreshAsync();
        await using (var connection = new NpgsqlConnection(await _database.ConnectionStringAsync()))
        {
            await connection.OpenAsync();
            await using var fill = new NpgsqlCommand("""
                INSERT INTO archive_mam (owner, id, stamp, peer, stanza_id, payload, ordinal)
                SELECT 'alice', n, 638000000000000000 + n::bigint * 10000000, 'peer' || (n % 20) || '@example.org', 'sid' || n,
                       convert_to('<message><body>message ' || n || '</body></message>', 'UTF8'), n
                FROM generate_series(1, 1000000) n;
                SELECT setval('archive_mam_ids', 1000000);
                ANALYZE archive_mam;
                """, connection) { CommandTimeout = 600 };
            await fill.ExecuteNonQueryAsync();
            // Autovacuum visits an insert-only table once its new rows pass a fifth of it (PostgreSQL 13 and later),
            // setting the visibility map that lets a count read the index alone; XMPP_MEASURE_VACUUM=1 measures that
            // state, the default the one just after a bulk load.
            if (Environment.GetEnvironmentVariable("XMPP_MEASURE_VACUUM") == "1")
            {
                await using var vacuum = new NpgsqlCommand("VACUUM archive_mam", connection) { CommandTimeout = 600 };
                await vacuum.ExecuteNonQueryAsync();
            }
        }
        var mam = storage.Archive("mam");
        foreach (var (name, query) in new[]
                 {
                     ("latest 50", new ArchiveQuery("alice", Max: 50, Reverse: true)),
                     ("latest 50 with one peer", new ArchiveQuery("alice", With: "peer3@example.org", Max: 50, Reverse: true)),
                     ("50 after an id in the middle", new ArchiveQuery("alice", AfterId: 500_000, Max: 50)),
                     // Start and End are found by binary searches of the primary key (migration 5 dropped the stamp index).
                     ("50 from a start time in the middle", new ArchiveQuery("alice",
                         Start: new DateTimeOffset(638000000000000000 + 500_000L * 10000000, TimeSpan.Zero), Max: 50)),
                     ("latest 50 before an end time in the middle", new ArchiveQuery("alice",
                         End: new DateTimeOffset(638000000000000000 + 500_000L * 10000000, TimeSpan.Zero), Max: 50, Reverse: true)),
                 })
        {
            for (var i = 0; i < 5; i++)
                await mam.QueryAsync(query);
            var times = new List<double>();
            for (var i = 0; i < 200; i++)
            {
                var watch = Stopwatch.StartNew();
                var page = await mam.QueryAsync(query);
                times.Add(watch.Elapsed.TotalMilliseconds);
                Assert.That(page.Records, Has.Count.EqualTo(50));
            }
            times.Sort();
            var counted = (await mam.QueryAsync(query)).TotalCount;
            TestContext.Out.WriteLine($"{name}: p50 {times[99]:F2} ms, p99 {times[197]:F2} ms, fastest {times[0]:F2} ms " +
                                      $"(200 pages with their count, {counted}; load average {File.ReadAllText("/proc/loadavg")[..14]})");
        }
    }

    [Test]
    public async Task Queued_appends_per_second()
    {
        await using var storage = await _database.OpenFreshAsync();
        var mam = storage.Archive("mam");
        var payload = Encoding.UTF8.GetBytes("<message to='bob@example.org' type='chat'><body>a message of typical length here</body></message>");
        const int count = 50_000;
        var watch = Stopwatch.StartNew();
        var tasks = new List<Task<long>>(count);
        for (var i = 0; i < count; i++)
            tasks.Add(mam.AppendAsync("user" + i % 500, DateTimeOffset.UtcNow, "peer@example.org", payload).AsTask());
        await Task.WhenAll(tasks);
        TestContext.Out.WriteLine($"{count} appends from 500 owners: {count / watch.Elapsed.TotalSeconds:F0}/s, {storage.Commits} commits");
    }
    /// The archive insert's cost in the database per row when groups are small, as under 1:1 traffic with XEP-0198
    /// acks (about 100 rows a commit): the CPU time of the database's backends (from /proc, so the load of other
    /// processes on the machine does not count), with statements prepared (the default) and without. For experiments
    /// by hand: XMPP_MEASURE_SQL is run on the fresh schema first (drop or add an index), XMPP_MEASURE_V7=1 gives
    /// time-ordered (version 7) stanza ids instead of random ones. The CPU of this process (the writer's side, with the
    /// appending loop) is printed beside the database's.
    [TestCase(true)]
    [TestCase(false)]
    public async Task Database_cpu_per_archived_row_in_small_groups(bool prepared)
    {
        await using (var warm = await _database.OpenFreshAsync()) { }
        var connectionString = await _database.ConnectionStringAsync() + (prepared ? "" : ";Max Auto Prepare=0");
        await using var storage = await PostgresStorage.OpenAsync(connectionString);
        if (Environment.GetEnvironmentVariable("XMPP_MEASURE_SQL") is { Length: > 0 } experiment)
        {
            await using var setup = new NpgsqlConnection(await _database.ConnectionStringAsync());
            await setup.OpenAsync();
            await using var run = new NpgsqlCommand(experiment, setup);
            await run.ExecuteNonQueryAsync();
        }
        var v7 = Environment.GetEnvironmentVariable("XMPP_MEASURE_V7") == "1";
        var mam = storage.Archive("mam");
        var payload = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' to='u1@bench.localhost/r' from='u2@bench.localhost/r' type='chat' id='m1'><body>"
                                             + new string('x', 150) + "</body></message>");
        async Task Groups(int groups)
        {
            for (var g = 0; g < groups; g++)
            {
                var tasks = new Task<long>[128];
                for (var i = 0; i < tasks.Length; i++)
                    tasks[i] = mam.AppendAsync($"u{(g * 128 + i) % 50}", DateTimeOffset.UtcNow, $"u{(i * 7 + i / 50 + g) % 50}@bench.localhost",
                        payload, (v7 ? Guid.CreateVersion7() : Guid.NewGuid()).ToString()).AsTask();
                await Task.WhenAll(tasks);
            }
        }
        await Groups(50);
        await using var probe = new NpgsqlConnection(await _database.ConnectionStringAsync());
        await probe.OpenAsync();
        async Task<long> BackendTicks()
        {
            await using var command = new NpgsqlCommand(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", probe);
            var ticks = 0L;
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var stat = File.ReadAllText($"/proc/{reader.GetInt32(0)}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                ticks += long.Parse(fields[11]) + long.Parse(fields[12]);
            }
            return ticks;
        }
        const int measured = 400;
        var before = await BackendTicks();
        var self = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        await Groups(measured);
        var cpuMs = (await BackendTicks() - before) * 10.0;
        var selfMs = (Process.GetCurrentProcess().TotalProcessorTime - self).TotalMilliseconds;
        TestContext.Out.WriteLine($"prepared={prepared}: " +
                                  $"{measured} groups of 128 rows, database CPU {cpuMs * 1000 / (measured * 128):F1} us/row, " +
                                  $"this process {selfMs * 1000 / (measured * 128):F1} us/row, " +
                                  $"{measured * 128 / watch.Elapsed.TotalSeconds:F0} rows/s, {storage.Commits} commits");
    }
}
