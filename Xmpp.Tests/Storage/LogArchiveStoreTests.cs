using System.Text;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;
using Xmpp.Storage.Log;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

// The archive log's own promises: what was acknowledged survives a restart or a torn write, data written by the
// LiteDB archive before the upgrade stays readable, and deleted records' segment files go away.
[TestFixture]
public sealed class LogArchiveStoreTests
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectories _directories = new();
    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = _directories.Create();

    [TearDown]
    public void DeleteDirectories() => _directories.DeleteAll();

    private LiteDbStorage Open(long segmentBytes = 1024) => new(_directory, LiteDbStorage.LogCollections, segmentBytes);

    private string Segments => Path.Combine(_directory, "archive", "mam");

    private static byte[] Body(int n) => Encoding.UTF8.GetBytes($"<message><body>{n}</body></message>");

    private static int Number(ArchiveRecord record)
    {
        var text = Encoding.UTF8.GetString(record.Payload);
        return int.Parse(text["<message><body>".Length..text.IndexOf('<', "<message><body>".Length)]);
    }

    private static async Task<long[]> AppendAsync(IArchiveStore archive, int from, int count, string owner = "juliet")
    {
        var ids = new long[count];
        for (var n = 0; n < count; n++)
            ids[n] = await archive.AppendAsync(owner, T0.AddSeconds(from + n), "romeo@montague.lit", Body(from + n), $"s{from + n}");
        return ids;
    }

    [Test]
    public async Task A_backup_taken_during_appends_and_deletions_opens_with_every_record_acknowledged_before_it()
    {
        var copy = _directories.Create();
        long[] before;
        int acknowledgedBefore;
        await using (var storage = Open(segmentBytes: 2048))
        {
            var archive = storage.Archive("mam");
            before = await AppendAsync(archive, 0, 300);
            Assert.That(await storage.Accounts.CreateAsync(new Account("juliet", [], T0)), Is.True);
            // While the backup runs, romeo's archive grows and juliet's oldest records are deleted, so segments roll
            // and emptied ones are removed by the indexer.
            using var stop = new CancellationTokenSource();
            var romeo = 0;
            var writing = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await archive.AppendAsync("romeo", T0.AddSeconds(1000 + romeo), "juliet@capulet.lit", Body(1000 + romeo));
                    Interlocked.Increment(ref romeo);
                    if (romeo % 10 == 0) await archive.DeleteThroughAsync("juliet", before[Math.Min(romeo / 10, 99)]);
                }
            });
            await Wait.UntilAsync(() => Volatile.Read(ref romeo) >= 200);
            acknowledgedBefore = Volatile.Read(ref romeo);
            Directory.CreateDirectory(copy);
            await storage.BackupAsync(copy);
            await stop.CancelAsync();
            await writing;
        }

        await using var opened = new LiteDbStorage(copy, LiteDbStorage.LogCollections, 2048);
        Assert.That(await opened.Accounts.FindAsync("juliet"), Is.Not.Null);
        var backup = opened.Archive("mam");
        var juliet = await backup.QueryAsync(new ArchiveQuery("juliet", Max: 1000));
        // Deletions only ever take the oldest records: what is left is a suffix that ends with the last record.
        Assert.That(juliet.Records.Select(Number).ToList(), Is.EqualTo(Enumerable.Range(300 - juliet.Records.Count, juliet.Records.Count)));
        Assert.That(juliet.Records.Count, Is.GreaterThanOrEqualTo(200), "no more than the first 100 were ever deleted");
        var romeoPage = await backup.QueryAsync(new ArchiveQuery("romeo", Max: 100_000));
        Assert.That(romeoPage.Records.Select(Number), Is.EqualTo(Enumerable.Range(1000, romeoPage.Records.Count)), "a gap-free prefix");
        Assert.That(romeoPage.Records.Count, Is.GreaterThanOrEqualTo(acknowledgedBefore));
    }

    [Test]
    public async Task Records_replacements_deletions_and_the_id_sequence_survive_a_restart()
    {
        long[] ids;
        await using (var storage = Open())
        {
            var archive = storage.Archive("mam");
            ids = await AppendAsync(archive, 0, 50);
            await AppendAsync(archive, 100, 3, "romeo");
            await archive.ReplaceAsync("juliet", ids[30], Body(999));
            await archive.DeleteThroughAsync("juliet", ids[9]);
            await archive.DeleteAllAsync("romeo");
        }

        await using var reopened = Open();
        var again = reopened.Archive("mam");

        var page = await again.QueryAsync(new ArchiveQuery("juliet", Max: 100));
        Assert.That(page.Records.Select(Number), Is.EqualTo(Enumerable.Range(10, 40).Select(n => n == 30 ? 999 : n)));
        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(ids[10..]));
        Assert.That(await again.CountAsync("romeo"), Is.Zero);
        Assert.That(await again.FindIdAsync("juliet", "s42"), Is.EqualTo(ids[42]));
        Assert.That(await again.AppendAsync("romeo", T0, "juliet@capulet.lit", Body(1)), Is.GreaterThan(ids[^1] + 3));
    }

    [Test]
    public async Task An_archive_of_several_index_blocks_keeps_deletions_replacements_and_appends_across_passes()
    {
        // Each session ends with an index pass. 600 records: a full block (IndexBlock.Capacity, 512) and one of 88; then
        // 700 more: 424 fill the small last block, 276 start a new one.
        long[] ids;
        await using (var storage = Open(segmentBytes: 1 << 20))
            ids = await AppendAsync(storage.Archive("mam"), 0, 600);
        await using (var storage = Open(segmentBytes: 1 << 20))
            ids = [.. ids, .. await AppendAsync(storage.Archive("mam"), 600, 700)];
        await using (var storage = Open(segmentBytes: 1 << 20))
        {
            // One pass: the first block goes, the second loses its head and has an entry repointed, the third has one
            // repointed, and the new entries open a fourth (the third is too large to take them).
            var archive = storage.Archive("mam");
            await archive.DeleteThroughAsync("juliet", ids[549]);
            await archive.ReplaceAsync("juliet", ids[1000], Body(5000));
            await archive.ReplaceAsync("juliet", ids[1100], Body(5100));
            ids = [.. ids, .. await AppendAsync(archive, 1300, 5)];
        }

        await using var reopened = Open(segmentBytes: 1 << 20);
        var again = reopened.Archive("mam");
        var expected = Enumerable.Range(550, 755).Select(n => n switch { 1000 => 5000, 1100 => 5100, _ => n });
        var page = await again.QueryAsync(new ArchiveQuery("juliet", Max: 2000));
        Assert.That(page.Records.Select(Number), Is.EqualTo(expected));
        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(ids[550..]));
        Assert.That(await again.CountAsync("juliet"), Is.EqualTo(755));
        Assert.That(await again.FindIdAsync("juliet", "s549"), Is.Null, "deleted");
        Assert.That(await again.FindIdAsync("juliet", "s1100"), Is.EqualTo(ids[1100]));
        Assert.That(await again.FindIdAsync("juliet", "s1304"), Is.EqualTo(ids[1304]));
    }

    [Test]
    public async Task Pages_of_an_archive_of_many_index_blocks_are_those_of_a_plain_scan_for_every_kind_of_query()
    {
        // The log store reads only the index blocks a page needs; the memory store scans everything. Same writes to
        // both (ids are given out from 1 in both), then every combination of filters and cursors must give the same page.
        var memory = new Xmpp.Storage.Memory.MemoryStorage().Archive("mam");
        string[] peers = ["romeo@montague.lit", "nurse@capulet.lit", "tybalt@capulet.lit"];
        // Three records per second, so equal stamps straddle block boundaries too.
        DateTimeOffset Stamp(int n) => T0.AddSeconds(n / 3);
        async Task Append(IArchiveStore archive, int from, int count)
        {
            for (var n = from; n < from + count; n++)
                await archive.AppendAsync(n % 7 == 0 ? "romeo" : "juliet", Stamp(n), peers[n % 3], Body(n), $"s{n}");
        }
        await Append(memory, 0, 1500);
        await using (var storage = Open(segmentBytes: 1 << 20))
            await Append(storage.Archive("mam"), 0, 700);
        await using (var storage = Open(segmentBytes: 1 << 20))
            await Append(storage.Archive("mam"), 700, 700);
        await using var reopened = Open(segmentBytes: 1 << 20);
        var log = reopened.Archive("mam");
        // The last records stay in memory (not yet indexed) while the first queries run; a deletion and a replacement
        // reach both stores alike.
        await Append(log, 1400, 100);
        foreach (var archive in new[] { memory, log })
        {
            await archive.DeleteThroughAsync("juliet", 120);
            await archive.ReplaceAsync("juliet", 801, Body(9801));
        }

        var queries = 0;
        foreach (var with in new string?[] { null, peers[1] })
        foreach (var start in new DateTimeOffset?[] { null, Stamp(300), Stamp(1470) })
        foreach (var end in new DateTimeOffset?[] { null, Stamp(900) })
        foreach (var afterId in new long?[] { null, 650 })
        foreach (var beforeId in new long?[] { null, 1200 })
        foreach (var max in new[] { 0, 7, 100 })
        foreach (var reverse in new[] { false, true })
        foreach (var ids in new IReadOnlyList<string>?[] { null, ["s5", "s801", "s1000", "s1490", "s1491"] })
        {
            var query = new ArchiveQuery("juliet", with, start, end, afterId, beforeId, max, reverse, ids);
            var expected = await memory.QueryAsync(query);
            var actual = await log.QueryAsync(query);
            Assert.That(actual.Records.Select(r => r.Id), Is.EqualTo(expected.Records.Select(r => r.Id)), query.ToString());
            Assert.That(actual.Records.Select(Number), Is.EqualTo(expected.Records.Select(Number)), query.ToString());
            Assert.That((actual.Complete, actual.TotalCount), Is.EqualTo((expected.Complete, expected.TotalCount)), query.ToString());
            queries++;
        }
        Assert.That(queries, Is.EqualTo(576));

        // A time range ending or starting at every second of the archive: some of them fall on block boundaries.
        for (var n = 0; n < 1500; n += 3)
        {
            foreach (var query in new[]
                     {
                         new ArchiveQuery("juliet", End: Stamp(n), Max: 5, Reverse: true),
                         new ArchiveQuery("juliet", Start: Stamp(n), Max: 5),
                     })
            {
                var expected = await memory.QueryAsync(query);
                var actual = await log.QueryAsync(query);
                Assert.That(actual.Records.Select(r => r.Id), Is.EqualTo(expected.Records.Select(r => r.Id)), query.ToString());
                Assert.That((actual.Complete, actual.TotalCount), Is.EqualTo((expected.Complete, expected.TotalCount)), query.ToString());
            }
        }
    }

    [Test]
    public async Task Records_not_yet_indexed_when_the_process_died_are_replayed_from_the_log()
    {
        // No dispose: the indexer never ran its last pass, as after a kill -9 (the log was fsynced per append).
        var storage = Open();
        var ids = await AppendAsync(storage.Archive("mam"), 0, 20);
        var copy = _directories.CopyOf(_directory);

        await using var reopened = new LiteDbStorage(copy, LiteDbStorage.LogCollections, 1024);
        var page = await reopened.Archive("mam").QueryAsync(new ArchiveQuery("juliet"));

        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(ids));
        await storage.DisposeAsync();
    }

    // A crash inside a write leaves part of a record no one was told is stored after the last acknowledged one.
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(20)]
    public async Task A_torn_last_record_is_cut_off_on_open_and_earlier_records_stay(int cut)
    {
        long[] ids;
        await using (var storage = Open(segmentBytes: 1 << 20))
            ids = await AppendAsync(storage.Archive("mam"), 0, 10);
        var torn = Record(ids[^1] + 1, 10);
        AppendToSegment(torn[..^cut]);

        await using (var reopened = Open(segmentBytes: 1 << 20))
        {
            var archive = reopened.Archive("mam");
            Assert.That((await archive.QueryAsync(new ArchiveQuery("juliet"))).Records.Select(r => r.Id), Is.EqualTo(ids));
            // The log goes on after the last whole record.
            await archive.AppendAsync("juliet", T0.AddSeconds(11), "romeo@montague.lit", Body(11));
        }
        await using var third = Open(segmentBytes: 1 << 20);
        Assert.That((await third.Archive("mam").QueryAsync(new ArchiveQuery("juliet"))).Records.Select(Number),
            Is.EqualTo(Enumerable.Range(0, 10).Append(11)));
    }

    [Test]
    public async Task A_last_record_that_fails_its_checksum_is_cut_off_on_open()
    {
        long[] ids;
        await using (var storage = Open(segmentBytes: 1 << 20))
            ids = await AppendAsync(storage.Archive("mam"), 0, 10);
        var corrupted = Record(ids[^1] + 1, 10);
        corrupted[^3] ^= 0xFF;
        AppendToSegment(corrupted);

        await using var reopened = Open(segmentBytes: 1 << 20);

        var page = await reopened.Archive("mam").QueryAsync(new ArchiveQuery("juliet"));
        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(ids));
    }

    private static byte[] Record(long id, int n)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        new LogRecord(LogRecordKind.Append, id, T0.AddSeconds(n).UtcTicks, "juliet", "romeo@montague.lit", $"s{n}", Body(n)).WriteTo(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private void AppendToSegment(byte[] bytes)
    {
        using var file = new FileStream(Directory.GetFiles(Segments, "*.log").Order().Last(), FileMode.Append);
        file.Write(bytes);
    }

    [Test]
    public async Task Segments_are_removed_once_every_record_in_them_is_deleted()
    {
        await using var storage = Open(segmentBytes: 1024);
        var archive = storage.Archive("mam");
        var ids = await AppendAsync(archive, 0, 200);
        await AppendAsync(archive, 1000, 1, "romeo");
        var before = Directory.GetFiles(Segments, "*.log").Length;
        Assert.That(before, Is.GreaterThan(10), "200 records of ~100 bytes in 1 KiB segments");

        await archive.DeleteThroughAsync("juliet", ids[149]);
        var oldest = Directory.GetFiles(Segments, "*.log").Order().First();
        await WaitUntilAsync(() => Directory.GetFiles(Segments, "*.log").Length < before / 2);

        Assert.That(Directory.GetFiles(Segments, "*.log").Length, Is.LessThan(before / 2), "the 50 records left fill a quarter of them");
        Assert.That(File.Exists(oldest), Is.False);
        Assert.That((await archive.QueryAsync(new ArchiveQuery("juliet", Max: 1000))).Records.Select(Number), Is.EqualTo(Enumerable.Range(150, 50)));
        Assert.That((await archive.QueryAsync(new ArchiveQuery("romeo"))).Records.Select(Number), Is.EqualTo(new[] { 1000 }),
            "the segment holding another owner's live record stays");

        await archive.DeleteAllAsync("juliet");
        await archive.DeleteAllAsync("romeo");
        await archive.AppendAsync("nurse", T0, "juliet@capulet.lit", Body(1));
        await WaitUntilAsync(() => Directory.GetFiles(Segments, "*.log").Length <= 2);
        Assert.That(Directory.GetFiles(Segments, "*.log").Length, Is.LessThanOrEqualTo(2), "only the active segment (and its predecessor) remain");
    }

    [Test]
    public async Task A_replaced_payload_keeps_its_new_segment_and_frees_the_old_one()
    {
        await using var storage = Open(segmentBytes: 512);
        var archive = storage.Archive("mam");
        var ids = await AppendAsync(archive, 0, 30);
        foreach (var id in ids)
            await archive.ReplaceAsync("juliet", id, Body(500));
        var oldest = Directory.GetFiles(Segments, "*.log").Order().First();

        await WaitUntilAsync(() => !File.Exists(oldest));

        Assert.That(File.Exists(oldest), Is.False);
        Assert.That((await archive.QueryAsync(new ArchiveQuery("juliet"))).Records.Select(Number), Is.All.EqualTo(500));
    }

    [Test]
    public async Task A_flush_completes_only_after_every_write_queued_before_it_and_flushes_of_one_group_share_a_task()
    {
        await using var storage = Open(segmentBytes: 1 << 20);
        var archive = storage.Archive("mam");
        var flushes = new List<Task>();
        var violations = 0;
        async Task Sender(string owner)
        {
            for (var n = 0; n < 300; n++)
            {
                var write = archive.AppendAsync(owner, T0.AddSeconds(n), "romeo@montague.lit", Body(n)).AsTask();
                var flush = storage.FlushAsync();
                lock (flushes) flushes.Add(flush);
                await flush;
                if (!write.IsCompletedSuccessfully) Interlocked.Increment(ref violations);
                if (n % 50 == 0) await Task.Yield();
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(() => Sender("owner" + i)))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.That(violations, Is.Zero, "a flush never completes before a write queued ahead of it");
        Assert.That(flushes.Distinct().Count(), Is.LessThan(flushes.Count / 2), "flushes asked for within one group share its task");
        Assert.That(await archive.CountAsync("owner3"), Is.EqualTo(300));
    }

    [Test]
    public async Task Records_of_the_LiteDB_archive_are_moved_into_the_log_on_upgrade()
    {
        long[] ids;
        long last;
        await using (var before = new LiteDbStorage(_directory, new HashSet<string>()))
        {
            var old = before.Archive("mam");
            ids = await AppendAsync(old, 0, 30);
            await AppendAsync(old, 100, 2, "romeo");
            await old.DeleteThroughAsync("juliet", ids[4]);
            last = await old.AppendAsync("nurse", T0, "juliet@capulet.lit", Body(7));
            await old.DeleteAllAsync("nurse");
        }

        await using (var after = Open())
        {
            var archive = after.Archive("mam");
            var page = await archive.QueryAsync(new ArchiveQuery("juliet", Max: 100));
            Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(ids[5..]));
            Assert.That(page.Records.Select(r => r.Stamp), Is.EqualTo(Enumerable.Range(5, 25).Select(n => T0.AddSeconds(n))));
            Assert.That(await archive.FindIdAsync("juliet", "s12"), Is.EqualTo(ids[12]));
            Assert.That(await archive.CountAsync("romeo"), Is.EqualTo(2));
            Assert.That(await archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(50)), Is.GreaterThan(last),
                "ids go on above every id the old archive gave out");
            Assert.That(after.Database.GetCollection("archive_mam").Count(), Is.Zero, "the LiteDB copy is emptied once moved");
        }

        await using var third = Open();
        Assert.That(await third.Archive("mam").CountAsync("juliet"), Is.EqualTo(26));
    }

    // Segments go once the lagging indexer has passed them (about every two seconds).
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 150 && !condition(); i++)
            await Task.Delay(100);
    }
}
