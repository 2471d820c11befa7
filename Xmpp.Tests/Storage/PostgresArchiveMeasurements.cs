using System.Diagnostics;
using System.Text;
using Npgsql;
using Xmpp.Storage;
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
                INSERT INTO archive_mam (owner, id, stamp, peer, stanza_id, payload, ordinal, peer_ordinal)
                SELECT 'alice', n, 638000000000000000 + n::bigint * 10000000, 'peer' || (n % 20) || '@example.org', 'sid' || n,
                       convert_to('<message><body>message ' || n || '</body></message>', 'UTF8'), n, n / 20 + 1
                FROM generate_series(1, 1000000) n;
                SELECT setval('archive_mam_ids', 1000000);
                ANALYZE archive_mam;
                """, connection) { CommandTimeout = 600 };
            await fill.ExecuteNonQueryAsync();
        }
        var mam = storage.Archive("mam");
        foreach (var (name, query) in new[]
                 {
                     ("latest 50", new ArchiveQuery("alice", Max: 50, Reverse: true)),
                     ("latest 50 with one peer", new ArchiveQuery("alice", With: "peer3@example.org", Max: 50, Reverse: true)),
                     ("50 after an id in the middle", new ArchiveQuery("alice", AfterId: 500_000, Max: 50)),
                 })
        {
            await mam.QueryAsync(query);
            var times = new List<double>();
            for (var i = 0; i < 20; i++)
            {
                var watch = Stopwatch.StartNew();
                var page = await mam.QueryAsync(query);
                times.Add(watch.Elapsed.TotalMilliseconds);
                Assert.That(page.Records, Has.Count.EqualTo(50));
            }
            times.Sort();
            var counted = (await mam.QueryAsync(query)).TotalCount;
            TestContext.Out.WriteLine($"{name}: median {times[10]:F1} ms, fastest {times[0]:F1} ms (page with its count, {counted})");
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
}
