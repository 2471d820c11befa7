using System.Globalization;
using System.Text;
using LiteDB;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;
using Xmpp.Storage.Log;

namespace Xmpp.Tests.Storage;

// The archive index file's promises: only committed passes count, compaction loses nothing, and index blocks that
// earlier versions kept in LiteDB move into the file on upgrade.
[TestFixture]
public sealed class IndexFileTests
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectories _directories = new();
    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = _directories.Create();

    [TearDown]
    public void DeleteDirectories() => _directories.DeleteAll();

    private LiteDbStorage Open(long compactBytes = IndexFile.DefaultCompactBytes) =>
        new(_directory, LiteDbStorage.LogCollections, 1 << 20, compactBytes);

    private string LogDirectory => Path.Combine(_directory, "archive", "mam");

    private string[] IndexFiles => Directory.GetFiles(LogDirectory, "index-*.idx").Order().ToArray();

    private static async Task<long[]> AppendAsync(IArchiveStore archive, int from, int count, string owner = "juliet")
    {
        var ids = new long[count];
        for (var n = 0; n < count; n++)
            ids[n] = await archive.AppendAsync(owner, T0.AddSeconds(from + n), "romeo@montague.lit",
                Encoding.UTF8.GetBytes($"<message><body>{from + n}</body></message>"), $"s{from + n}");
        return ids;
    }

    private static async Task<long[]> IdsAsync(IArchiveStore archive, string owner = "juliet") =>
        (await archive.QueryAsync(new ArchiveQuery(owner, Max: 10_000))).Records.Select(r => r.Id).ToArray();

    // Blocks of a pass that never reached its commit, as a crash between the write and the fsync leaves them.
    private static byte[] UncommittedPass(string owner, long firstId)
    {
        var pass = new IndexFile.Pass();
        pass.Put(owner, [new LogEntry(firstId, T0.UtcTicks, "mallory@evil.example", null, new LogLocation(1, 0, 40))]);
        pass.Drop(owner, 1);
        return pass.Buffer.WrittenSpan.ToArray();
    }

    [Test]
    public async Task A_pass_without_its_commit_is_cut_off_on_open_and_its_records_come_back_from_the_log()
    {
        long[] first, second;
        await using (var storage = Open())
            first = await AppendAsync(storage.Archive("mam"), 0, 20);
        await using (var storage = Open())
        {
            second = await AppendAsync(storage.Archive("mam"), 20, 10);
            // As after a crash in the middle of the next pass: its blocks are written, its commit is not.
            var index = IndexFiles.Single();
            var committed = new FileInfo(index).Length;
            await using (var file = new FileStream(index, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
                file.Write(UncommittedPass("juliet", 100_000));
            var copy = _directories.CopyOf(_directory);
            var copied = Path.Combine(copy, Path.GetRelativePath(_directory, index));

            await using var reopened = new LiteDbStorage(copy, LiteDbStorage.LogCollections, 1 << 20);
            Assert.That(await IdsAsync(reopened.Archive("mam")), Is.EqualTo(first.Concat(second)),
                "the uncommitted blocks (a foreign entry, a drop of the first block) count for nothing");
            Assert.That(new FileInfo(copied).Length, Is.LessThanOrEqualTo(committed + 1024), "cut back to its last commit");
        }
    }

    [Test]
    public async Task A_damaged_tail_of_the_index_file_is_cut_off_and_the_index_goes_on_after_it()
    {
        long[] ids;
        await using (var storage = Open())
            ids = await AppendAsync(storage.Archive("mam"), 0, 15);
        var index = IndexFiles.Single();
        var committed = new FileInfo(index).Length;
        var torn = UncommittedPass("juliet", 100_000);
        torn[^2] ^= 0xFF;
        await using (var file = new FileStream(index, FileMode.Append, FileAccess.Write))
            file.Write(torn);

        await using (var storage = Open())
        {
            Assert.That(await IdsAsync(storage.Archive("mam")), Is.EqualTo(ids));
            var bytes = await File.ReadAllBytesAsync(index);
            Assert.That(bytes.Length == committed || !bytes.AsSpan((int)committed).StartsWith(torn.AsSpan(0, 16)), Is.True,
                "the damaged record is gone, so what the index writes next follows its last commit");
            ids = [.. ids, .. await AppendAsync(storage.Archive("mam"), 15, 5)];
        }
        await using var third = Open();
        Assert.That(await IdsAsync(third.Archive("mam")), Is.EqualTo(ids));
    }

    [Test]
    public async Task Compaction_moves_the_live_blocks_into_a_new_generation_and_loses_nothing()
    {
        // Every open ends with a pass that rewrites juliet's last, small block, so superseded copies pile up.
        var juliet = new List<long>();
        var romeo = new List<long>();
        for (var round = 0; round < 40; round++)
        {
            await using var storage = Open(compactBytes: 8 * 1024);
            var archive = storage.Archive("mam");
            juliet.AddRange(await AppendAsync(archive, round * 10, 10));
            romeo.AddRange(await AppendAsync(archive, round * 10, 2, "romeo"));
            if (round == 25)
            {
                await archive.DeleteThroughAsync("juliet", juliet[99]);
                juliet.RemoveRange(0, 100);
            }
        }

        Assert.That(IndexFiles, Has.Length.EqualTo(1), "the older generation is deleted");
        Assert.That(Path.GetFileName(IndexFiles[0]), Is.Not.EqualTo("index-00000001.idx"), "compacted at least once");
        // About 19 KiB live (310 entries); the 40 passes wrote several times that.
        Assert.That(new FileInfo(IndexFiles[0]).Length, Is.LessThan(48 * 1024), "superseded blocks are gone");
        await using var reopened = Open(compactBytes: 8 * 1024);
        var mam = reopened.Archive("mam");
        Assert.That(await IdsAsync(mam), Is.EqualTo(juliet));
        Assert.That(await IdsAsync(mam, "romeo"), Is.EqualTo(romeo));
        Assert.That(await mam.FindIdAsync("juliet", "s395"), Is.EqualTo(juliet[^5]));
    }

    [Test]
    public async Task A_compaction_cut_short_is_removed_and_the_generation_before_it_stays_in_use()
    {
        long[] ids;
        await using (var storage = Open())
            ids = await AppendAsync(storage.Archive("mam"), 0, 12);
        var current = IndexFiles.Single();
        var unfinished = Path.Combine(LogDirectory, "index-00000099.idx");
        await File.WriteAllBytesAsync(unfinished, [.. "XMPPIDX1"u8.ToArray(), .. UncommittedPass("juliet", 1)]);

        await using var reopened = Open();
        Assert.That(await IdsAsync(reopened.Archive("mam")), Is.EqualTo(ids));
        Assert.That(IndexFiles, Is.EqualTo(new[] { current }));
    }

    [Test]
    public async Task Index_blocks_that_earlier_versions_kept_in_LiteDB_move_into_the_index_file_on_upgrade()
    {
        long[] juliet, romeo;
        await using (var storage = Open())
        {
            var archive = storage.Archive("mam");
            juliet = await AppendAsync(archive, 0, 300);
            romeo = await AppendAsync(archive, 0, 4, "romeo");
            await archive.DeleteThroughAsync("juliet", juliet[9]);
            juliet = juliet[10..];
        }
        WriteLegacyIndex();

        await using (var upgraded = Open())
        {
            var archive = upgraded.Archive("mam");
            Assert.That(await IdsAsync(archive), Is.EqualTo(juliet));
            Assert.That(await IdsAsync(archive, "romeo"), Is.EqualTo(romeo));
            Assert.That(IndexFiles, Has.Length.EqualTo(1));
            Assert.That(upgraded.Database.GetCollection("archive_mam_index").Count(), Is.Zero, "the LiteDB copy is emptied once moved");
            Assert.That(upgraded.Database.GetCollection("archive_logs").FindById("mam"), Is.Null);
            juliet = [.. juliet, .. await AppendAsync(archive, 300, 3)];
        }
        await using var third = Open();
        Assert.That(await IdsAsync(third.Archive("mam")), Is.EqualTo(juliet));
    }

    // Turns the index file into the LiteDB layout of earlier versions: a document per block, the checkpoint in
    // "archive_logs"; then removes the file.
    private void WriteLegacyIndex()
    {
        var index = new IndexFile(LogDirectory);
        var checkpoint = index.Checkpoint!;
        using (var db = new LiteDatabase(Path.Combine(_directory, LiteDbStorage.FileName)))
        {
            var blocks = db.GetCollection("archive_mam_index");
            foreach (var owner in new[] { "juliet", "romeo" })
            {
                var (file, refs) = index.Snapshot(owner);
                foreach (var block in refs)
                {
                    var entries = IndexFile.ReadBlock(file, block);
                    var packed = new byte[IndexBlock.PackedLength(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(entries))];
                    IndexBlock.Pack(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(entries), packed);
                    blocks.Insert(new BsonDocument
                    {
                        ["_id"] = owner + IndexBlock.Separator + entries[0].Id.ToString("D19", CultureInfo.InvariantCulture),
                        ["last"] = entries[^1].Id, ["n"] = entries.Count, ["e"] = packed,
                    });
                }
            }
            var live = new BsonDocument();
            foreach (var (segment, count) in checkpoint.Live)
                live[segment.ToString(CultureInfo.InvariantCulture)] = count;
            db.GetCollection("archive_logs").Insert(new BsonDocument
            {
                ["_id"] = "mam", ["segment"] = checkpoint.Position.Segment, ["offset"] = checkpoint.Position.Offset,
                ["lastId"] = checkpoint.LastId, ["live"] = live,
            });
        }
        index.Dispose();
        foreach (var file in IndexFiles)
            File.Delete(file);
    }
}
