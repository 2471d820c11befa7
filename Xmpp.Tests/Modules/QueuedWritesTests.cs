using Xmpp.Server.Modules;
using Xmpp.Storage;
using Xmpp.Storage.Memory;

namespace Xmpp.Tests.Modules;

[TestFixture]
public sealed class QueuedWritesTests
{
    /// Storage whose writer backlog the test sets.
    private sealed class Backlogged(int pending) : IStorage
    {
        private readonly MemoryStorage _inner = new();
        public IAccountStore Accounts => _inner.Accounts;
        public IRosterStore Rosters => _inner.Rosters;
        public IArchiveStore Archive(string collection) => _inner.Archive(collection);
        public IKeyValueStore KeyValue => _inner.KeyValue;
        public IUploadStore Uploads => _inner.Uploads;
        public Task FlushAsync() => Task.CompletedTask;
        public int PendingWrites => pending;
        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }

    [Test]
    public async Task A_write_is_not_waited_for_while_the_writer_keeps_up()
    {
        var write = new TaskCompletionSource();
        var wait = new QueuedWrites(new Backlogged(QueuedWrites.MaxPending)).AddAsync("bob", write.Task, null);
        Assert.That(wait.IsCompleted, Is.True);
        await wait;
    }

    [Test]
    public async Task A_writer_behind_by_more_than_the_bound_holds_the_sender_until_its_write_is_done()
    {
        var write = new TaskCompletionSource();
        var wait = new QueuedWrites(new Backlogged(QueuedWrites.MaxPending + 1)).AddAsync("bob", write.Task, null).AsTask();
        await Task.Delay(100);
        Assert.That(wait.IsCompleted, Is.False, "the sender waits for the disk");
        write.SetException(new IOException("disk full"));
        await wait; // a failed write releases the sender too; the failure goes to onFault in a sweep
    }

    [Test]
    public async Task A_failed_write_is_reported_once_by_the_next_sweep_and_a_successful_one_never()
    {
        var reported = new List<(string Account, Exception Error)>();
        var queued = new QueuedWrites(new Backlogged(0), (account, error) => reported.Add((account, error)));
        var failed = new TaskCompletionSource();
        await queued.AddAsync("bob", failed.Task, null);
        failed.SetException(new IOException("disk full"));
        await queued.WaitAsync("bob"); // a reader is released quietly
        Assert.That(reported, Is.Empty, "reported by a sweep, not on the write path");

        // Enough other writes to start sweeps; bob's failure is found in the first and then forgotten.
        for (int i = 0; i < 20_000; i++)
            await queued.AddAsync("user" + i, Task.CompletedTask, null);
        Assert.That(reported, Has.Count.EqualTo(1));
        Assert.That(reported[0].Account, Is.EqualTo("bob"));
        Assert.That(reported[0].Error, Is.InstanceOf<IOException>().With.Message.EqualTo("disk full"));
    }

    [Test]
    public async Task A_reader_of_an_account_waits_for_that_accounts_queued_writes_only()
    {
        var queued = new QueuedWrites(new Backlogged(0));
        var bobs = new TaskCompletionSource();
        await queued.AddAsync("bob", bobs.Task, null);
        Assert.That(queued.WaitAsync("alice").IsCompleted, Is.True, "nothing queued for alice");
        var wait = queued.WaitAsync("bob").AsTask();
        await Task.Delay(100);
        Assert.That(wait.IsCompleted, Is.False, "bob's reader waits for bob's write");
        bobs.SetResult();
        await wait;
    }

    [Test]
    public async Task The_LiteDB_writer_counts_queued_writes_until_they_commit()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-backlog-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            await using var storage = new Xmpp.Storage.LiteDb.LiteDbStorage(dir);
            var archive = storage.Archive("offline");
            var writes = Enumerable.Range(0, 500).Select(i => archive.AppendAsync("bob", DateTimeOffset.UtcNow, "alice@localhost", new byte[] { 1 }).AsTask()).ToList();
            Assert.That(storage.PendingWrites, Is.GreaterThan(0));
            await Task.WhenAll(writes);
            await storage.FlushAsync();
            Assert.That(storage.PendingWrites, Is.Zero);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task Finished_writes_are_forgotten_in_sweeps_while_unfinished_ones_are_still_waited_for()
    {
        var queued = new QueuedWrites(new Backlogged(0));
        var open = new TaskCompletionSource();
        await queued.AddAsync("slow", open.Task, null);
        for (int i = 0; i < 20_000; i++)
            await queued.AddAsync("user" + i, Task.CompletedTask, null);

        Assert.That(queued.Tracked, Is.LessThan(10_000), "accounts whose writes finished do not accumulate");
        var wait = queued.WaitAsync("slow").AsTask();
        Assert.That(wait.IsCompleted, Is.False, "an unfinished write is kept through every sweep");
        open.SetResult();
        await wait;
    }
}
