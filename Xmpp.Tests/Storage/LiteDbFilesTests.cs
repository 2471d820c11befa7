using LiteDB;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Tests.Storage;

[TestFixture]
public sealed class LiteDbFilesTests
{
    private string _directory = "";

    [SetUp]
    public void SetUp()
    {
        _directory = Path.Combine(Path.GetTempPath(), "xmpp-files-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_directory, recursive: true);

    [Test]
    public void The_log_is_synced_before_the_data_file_is_first_written_after_it()
    {
        using var files = new LiteDbFiles(Path.Combine(_directory, "t.db"));
        files.Log.Write(new byte[8192]);
        Assert.That(files.Log.Unsynced, Is.True);
        files.Log.Flush(); // what LiteDB does after every log page: no sync by itself
        Assert.That(files.Log.Syncs, Is.Zero);

        files.Data.Write(new byte[8192]);
        Assert.That(files.Log.Unsynced, Is.False, "write-ahead: the log reached the disk before the data write");
        Assert.That(files.Log.Syncs, Is.EqualTo(1));
        Assert.That(files.Data.Unsynced, Is.True);

        files.Data.Write(new byte[8192]);
        Assert.That(files.Log.Syncs, Is.EqualTo(1), "nothing new in the log, no second sync");
        files.Data.Sync();
        files.Data.Sync();
        Assert.That(files.Data.Syncs, Is.EqualTo(1));
    }

    [Test]
    public async Task A_large_group_costs_a_few_syncs_not_one_per_page_and_survives_a_reopen()
    {
        var payload = new byte[4096];
        Random.Shared.NextBytes(payload);
        long logSyncs, dataSyncs;
        await using (var storage = new LiteDbStorage(_directory))
        {
            var before = (storage.Files.Log.Syncs, storage.Files.Data.Syncs);
            // About 4 MB in one group: hundreds of pages, which LiteDB alone wrote with an fsync each.
            for (var i = 0; i < 1000; i++)
                _ = storage.KeyValue.SetAsync("juliet", "k" + i, payload);
            await storage.KeyValue.SetAsync("juliet", "last", payload);
            logSyncs = storage.Files.Log.Syncs - before.Item1;
            dataSyncs = storage.Files.Data.Syncs - before.Item2;
        }
        Assert.That(logSyncs, Is.InRange(1, 20), "log syncs for the writes");
        Assert.That(dataSyncs, Is.InRange(1, 20), "data file syncs for the writes");

        await using var reopened = new LiteDbStorage(_directory);
        Assert.That(await reopened.KeyValue.GetAsync("juliet", "k999"), Is.EqualTo(payload));
        Assert.That(await reopened.KeyValue.GetAsync("juliet", "last"), Is.EqualTo(payload));
    }
}
