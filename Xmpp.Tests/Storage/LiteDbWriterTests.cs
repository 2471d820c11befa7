using LiteDB;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Tests.Storage;

// The group-commit writer on its own, where failures can be provoked.
[TestFixture]
public sealed class LiteDbWriterTests
{
    private readonly TemporaryDirectories _directories = new();
    private LiteDatabase _db = null!;
    private LiteDbWriter _writer = null!;

    [SetUp]
    public void Open()
    {
        var directory = _directories.Create();
        Directory.CreateDirectory(directory);
        _db = new LiteDatabase(new ConnectionString { Filename = Path.Combine(directory, "w.db"), Connection = ConnectionType.Direct });
        _writer = new LiteDbWriter(_db);
    }

    [TearDown]
    public async Task Close()
    {
        await _writer.DisposeAsync();
        _db.Dispose();
        _directories.DeleteAll();
    }

    private static Func<LiteDatabase, int> Insert(int n) => db =>
    {
        db.GetCollection("items").Insert(new BsonDocument { ["_id"] = n });
        return n;
    };

    [Test]
    public async Task Flush_waits_for_earlier_writes_but_not_for_a_background_one()
    {
        using var release = new ManualResetEventSlim();
        var foreground = _writer.Enqueue(Insert(1));
        var background = _writer.Enqueue(db =>
        {
            release.Wait(TimeSpan.FromSeconds(30));
            return Insert(2)(db);
        }, background: true);

        await _writer.FlushAsync().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.That(foreground.IsCompletedSuccessfully, Is.True, "the foreground write queued before the flush is stored");
        Assert.That(background.IsCompleted, Is.False, "the background write is still held");
        release.Set();
        Assert.That(await background, Is.EqualTo(2));
        var afterwards = _writer.Enqueue(Insert(3));
        await _writer.FlushAsync();
        Assert.That(afterwards.IsCompletedSuccessfully, Is.True);
    }

    [Test]
    public async Task An_exclusive_action_runs_between_groups_after_every_earlier_write_and_before_every_later_one()
    {
        var earlier = Enumerable.Range(1, 500).Select(n => _writer.Enqueue(Insert(n))).ToList();
        int seen = -1;
        bool couldBegin = false;
        using var release = new ManualResetEventSlim();
        var exclusive = _writer.RunExclusiveAsync(db =>
        {
            seen = db.GetCollection("items").Count();
            // No transaction of the writer is open on its thread: a new one can begin (and is given up at once).
            couldBegin = db.BeginTrans();
            db.Rollback();
            release.Wait(TimeSpan.FromSeconds(30));
        });
        var later = _writer.Enqueue(Insert(1000));
        await Task.Delay(200);
        Assert.That(later.IsCompleted, Is.False, "a write queued after the action waits for it");
        release.Set();
        await exclusive.WaitAsync(TimeSpan.FromSeconds(10));
        await later.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(earlier.All(t => t.IsCompletedSuccessfully));
        Assert.That(seen, Is.EqualTo(500));
        Assert.That(couldBegin, Is.True);
    }

    [Test]
    public async Task A_failing_write_fails_alone_and_the_rest_of_its_group_commits()
    {
        var writes = new List<Task<int>>();
        for (var n = 1; n <= 20; n++)
            writes.Add(_writer.Enqueue(Insert(n)));
        // The same key again: LiteDB throws and rolls back the whole transaction it ran in.
        var duplicate = _writer.Enqueue(Insert(5));
        for (var n = 21; n <= 40; n++)
            writes.Add(_writer.Enqueue(Insert(n)));

        Assert.That(async () => await duplicate, Throws.InstanceOf<LiteException>());
        Assert.That(await Task.WhenAll(writes), Is.EqualTo(Enumerable.Range(1, 40)));
        Assert.That(_db.GetCollection("items").Count(), Is.EqualTo(40));
    }

    [Test]
    public async Task Writes_fail_with_the_cause_instead_of_hanging_when_the_database_breaks()
    {
        await _writer.Enqueue(Insert(1));
        _db.Dispose();

        var write = _writer.Enqueue(Insert(2));

        Assert.That(await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(10))), Is.SameAs(write));
        Assert.That(async () => await write, Throws.InstanceOf<ObjectDisposedException>().Or.InstanceOf<LiteException>());
    }

    [Test]
    public async Task Writes_after_dispose_are_refused()
    {
        await _writer.DisposeAsync();

        Assert.That(async () => await _writer.Enqueue(Insert(1)), Throws.InstanceOf<ObjectDisposedException>());
    }

    [Test]
    public async Task A_completed_write_is_visible_to_a_read_on_another_thread()
    {
        for (var n = 1; n <= 50; n++)
        {
            await _writer.Enqueue(Insert(n));
            var seen = await Task.Run(() => _db.GetCollection("items").FindById(n));
            Assert.That(seen, Is.Not.Null);
        }
    }
}
