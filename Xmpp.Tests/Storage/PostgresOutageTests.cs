using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using Xmpp.Storage;
using Xmpp.Storage.Postgres;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

/// The database goes away under the storage: queued writes are held, not failed, and not acknowledged; the writer
/// retries with back-off, says so once, and commits everything when the database is back. A private PostgreSQL
/// instance of this fixture's own is stopped and started again, so no other test sees the outage.
[TestFixture]
[Category("PostgreSql")]
[NonParallelizable]
public sealed class PostgresOutageTests
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);
    private PostgresInstance _instance = null!;
    private string _connectionString = null!;

    [OneTimeSetUp]
    public async Task StartInstance()
    {
        _instance = await PostgresInstance.StartPrivateAsync();
        _connectionString = _instance.ConnectionString(await _instance.CreateDatabaseAsync("outage"));
    }

    [OneTimeTearDown]
    public void StopInstance() => _instance.Stop();

    private static byte[] Body(int n) => Encoding.UTF8.GetBytes($"<message><body>{n}</body></message>");

    [TestCase(false, TestName = "Writes_queued_while_the_database_is_stopped_are_committed_once_it_is_back")]
    [TestCase(true, TestName = "Writes_queued_while_the_database_is_crashed_are_committed_once_it_has_recovered")]
    public async Task Writes_are_held_through_an_outage(bool crash)
    {
        var log = new CapturingLogger();
        await using var storage = await PostgresStorage.OpenAsync(_connectionString, log);
        var spool = storage.Archive("offline");
        var before = await spool.AppendAsync("juliet", T0, "romeo@montague.lit", Body(0));

        _instance.StopServer(crash);
        var appends = Enumerable.Range(1, 100).Select(n => spool.AppendAsync("juliet", T0, "romeo@montague.lit", Body(n)).AsTask()).ToList();
        var document = storage.KeyValue.SetAsync("juliet", "vcard", Body(1)).AsTask();
        var flush = storage.FlushAsync();
        await Task.Delay(1500);

        // Nothing is acknowledged while it cannot be stored, and nothing is failed either.
        Assert.That(appends.Any(a => a.IsCompleted) || document.IsCompleted || flush.IsCompleted, Is.False);
        Assert.That(storage.PendingWrites, Is.EqualTo(101));

        await _instance.StartAgainAsync();
        var ids = await Task.WhenAll(appends).WaitAsync(TimeSpan.FromSeconds(30));
        await document;
        await flush.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.That(ids, Is.Ordered.Ascending.And.Unique);
        Assert.That(ids[0], Is.GreaterThan(before));
        var page = await spool.QueryAsync(new ArchiveQuery("juliet", Max: 500));
        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(new[] { before }.Concat(ids)), "every write stored once, in order");
        Assert.That(await storage.KeyValue.GetAsync("juliet", "vcard"), Is.EqualTo(Body(1)));
        Assert.That(storage.PendingWrites, Is.Zero);
        // Said once per outage, not once per retry; and the recovery is said too.
        Assert.That(log.Lines.Count(l => l.Level == LogLevel.Error && l.Text.Contains("cannot be reached")), Is.EqualTo(1), string.Join("\n", log.Lines));
        Assert.That(log.Lines.Count(l => l.Text.Contains("reachable again")), Is.EqualTo(1), string.Join("\n", log.Lines));
        await spool.DeleteAllAsync("juliet");
    }

    [Test]
    public async Task Reads_fail_while_the_database_is_away_and_work_again_after()
    {
        await using var storage = await PostgresStorage.OpenAsync(_connectionString);
        await storage.KeyValue.SetAsync("romeo", "vcard", Body(2));

        _instance.StopServer(crash: false);
        try
        {
            Assert.That(async () => await storage.KeyValue.GetAsync("romeo", "vcard"), Throws.InstanceOf<NpgsqlException>());
        }
        finally
        {
            await _instance.StartAgainAsync();
        }

        Assert.That(await storage.KeyValue.GetAsync("romeo", "vcard"), Is.EqualTo(Body(2)));
    }

    [Test]
    public async Task Reads_failing_through_an_outage_are_said_once_and_the_end_once_with_writes_or_without()
    {
        var log = new CapturingLogger();
        await using var storage = await PostgresStorage.OpenAsync(_connectionString, log);
        await storage.KeyValue.SetAsync("romeo", "vcard", Body(3));
        int Said(string text) => log.Lines.Count(l => l.Text.Contains(text));

        // Reads only: each fails, one line says so.
        _instance.StopServer(crash: false);
        try
        {
            for (var i = 0; i < 10; i++)
                Assert.That(async () => await storage.KeyValue.GetAsync("romeo", "vcard"), Throws.InstanceOf<NpgsqlException>());
            Assert.That(async () => await storage.Archive("mam").QueryAsync(new ArchiveQuery("romeo")), Throws.InstanceOf<NpgsqlException>());
        }
        finally
        {
            await _instance.StartAgainAsync();
        }
        Assert.That(await storage.KeyValue.GetAsync("romeo", "vcard"), Is.EqualTo(Body(3)));
        Assert.That(await storage.Accounts.CountAsync(), Is.Zero);
        Assert.That((Said("cannot be reached"), Said("reachable again")), Is.EqualTo((1, 1)), string.Join("\n", log.Lines));

        // Reads and a held write in the next outage: still one line each, whichever notices first.
        _instance.StopServer(crash: true);
        Task write;
        try
        {
            write = storage.KeyValue.SetAsync("romeo", "vcard", Body(4)).AsTask();
            for (var i = 0; i < 10; i++)
            {
                Assert.That(async () => await storage.Rosters.GetAsync("romeo"), Throws.InstanceOf<NpgsqlException>());
                await Task.Delay(50);
            }
            Assert.That(write.IsCompleted, Is.False);
        }
        finally
        {
            await _instance.StartAgainAsync();
        }
        await write.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(await storage.KeyValue.GetAsync("romeo", "vcard"), Is.EqualTo(Body(4)));
        Assert.That((Said("cannot be reached"), Said("reachable again")), Is.EqualTo((2, 2)), string.Join("\n", log.Lines));
        Assert.That(log.Lines.Where(l => l.Text.Contains("cannot be reached")).Select(l => l.Level), Is.All.EqualTo(LogLevel.Error));
    }

    private sealed class CapturingLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Text)> _lines = [];

        public IReadOnlyList<(LogLevel Level, string Text)> Lines
        {
            get { lock (_lines) return _lines.ToList(); }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines) _lines.Add((logLevel, formatter(state, exception)));
        }
    }

    // Two cluster nodes' writers commit groups that update the same rows in opposite orders (accounts logging out on
    // both at once): PostgreSQL breaks the deadlock by rolling one group back. That group must run again and every
    // write be stored, without the storage calling it an outage (which turns every node's /ready to 503: seen in the
    // cluster benchmark's 50,000-session run, where HAProxy then took all three nodes out).
    [Test]
    public async Task A_group_rolled_back_to_break_a_deadlock_with_another_node_runs_again_and_is_no_outage()
    {
        var log = new CapturingLogger();
        await using var first = await PostgresStorage.OpenAsync(_connectionString, log);
        await using var second = await PostgresStorage.OpenAsync(_connectionString, log);
        var names = Enumerable.Range(0, 60).Select(n => $"deadlock{n}").ToList();
        foreach (var name in names)
            await first.Accounts.CreateAsync(AccountStoreContract.SampleAccount(name));
        var round = 0;
        for (; round < 40 && first.WriteConflicts + second.WriteConflicts == 0; round++)
        {
            var status = "round " + round;
            // Queued at once, so each writer takes all of them into one transaction, in opposite orders.
            var forward = names.Select(n => first.Accounts.UpdateAsync(AccountStoreContract.SampleAccount(n) with { LastStatus = status + " a" }).AsTask()).ToList();
            var backward = Enumerable.Reverse(names).Select(n => second.Accounts.UpdateAsync(AccountStoreContract.SampleAccount(n) with { LastStatus = status + " b" }).AsTask()).ToList();
            await Task.WhenAll(forward.Concat(backward)).WaitAsync(TimeSpan.FromSeconds(60));
            foreach (var name in names)
                Assert.That((await first.Accounts.FindAsync(name))!.LastStatus, Is.EqualTo(status + " a").Or.EqualTo(status + " b"));
        }

        Assert.That(first.WriteConflicts + second.WriteConflicts, Is.GreaterThan(0), $"no deadlock in {round} rounds: the test proved nothing");
        Assert.That(log.Lines.Where(l => l.Text.Contains("cannot be reached")), Is.Empty, string.Join("\n", log.Lines));
        Assert.That(first.PendingWrites + second.PendingWrites, Is.Zero);
        foreach (var name in names)
            await first.Accounts.DeleteAsync(name);
    }
}
