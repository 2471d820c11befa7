using System.Diagnostics;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// MAM query cost over a real TLS socket (issue 20, docs/security.md "MAM query cost"): on an archive of 40,000 messages
/// spread over three years, queries over the whole range with a huge RSM max get one page of Mam:MaxPageSize,
/// promptly, and a flood of them meets the IQ rate. On the embedded store and on PostgreSQL.
[TestFixtureSource(nameof(Storages))]
[Category("Abuse")]
[NonParallelizable]
public sealed class MamQueryCostTests(string storage)
{
    public static IEnumerable<TestFixtureData> Storages()
    {
        yield return new TestFixtureData("embedded");
        var postgres = new TestFixtureData("postgresql");
        postgres.Properties.Add(NUnit.Framework.Internal.PropertyNames.Category, "PostgreSql");
        yield return postgres;
    }

    private const int Messages = 40_000;
    private const int PageCap = 250; // Mam:MaxPageSize's default
    private const string Rare = "rare@localhost";
    // Measured 2-230 ms on two shared cores at light load (2026-12-07); the bound leaves room for a CI machine at load
    // 30-50 (test.sh). The times are written to the test output.
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);
    private static readonly DateTimeOffset Newest = DateTimeOffset.UtcNow.AddMinutes(-1);
    private static readonly DateTimeOffset Oldest = Newest.AddYears(-3);

    private readonly PostgresTestDatabase? _database = storage == "postgresql" ? new PostgresTestDatabase("mamcost") : null;
    private TestServer _server = null!;
    private TestClient _alice = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        string? connection = null;
        if (_database is not null)
        {
            await _database.ResetAsync();
            connection = await _database.ConnectionStringAsync();
        }
        _server = await TestServer.StartAsync(configure: o =>
        {
            if (connection is not null) TestServer.WithPostgres(connection)(o);
            // Small enough for the flood below to meet it, large enough for the single queries before it.
            o["Xmpp:RateLimits:IqPerSecond"] = "1";
            o["Xmpp:RateLimits:IqBurst"] = "12";
        });
        await _server.AddUserAsync("alice", "alice-pw");
        var archive = _server.Get<IStorage>().Archive("mam");
        var clock = Stopwatch.StartNew();
        var step = (Newest - Oldest) / Messages;
        // In batches, so ids follow the stamps closely on PostgreSQL too (the log store numbers them in call order).
        for (int batch = 0; batch < Messages; batch += 1000)
        {
            var writes = new List<Task>();
            for (int i = batch; i < batch + 1000; i++)
            {
                // Three messages with a rare contact, all at the far end of the range: a 'with' query for them finds
                // nothing in the other 39,997.
                var with = i is 10 or 20 or 30 ? Rare : $"contact{i % 50}@localhost";
                var payload = Encoding.UTF8.GetBytes($"<message xmlns='jabber:client' from='{with}/r' to='alice@localhost' type='chat' id='m{i}'><body>{i}</body></message>");
                writes.Add(archive.AppendAsync("alice", Oldest + step * i, with, payload, $"s{i}").AsTask());
            }
            await Task.WhenAll(writes);
        }
        TestContext.Progress.WriteLine($"{storage}: {Messages} archived messages written in {clock.Elapsed.TotalSeconds:0.0} s");
        _alice = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "pc");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _alice.DisposeAsync();
        await _server.DisposeAsync();
    }

    private sealed record Answer(List<Element> Results, Element Iq, TimeSpan Elapsed)
    {
        public IEnumerable<int> Bodies => Results.Select(r => int.Parse(r.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!.ChildText("body", Ns.Client)!));
        public string? Complete => Iq.Child("fin", Ns.Mam)?.Attr("complete");
    }

    private static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");

    private static string Query(string queryId, string iqId, string rsm, params (string Var, string Value)[] fields) =>
        $"<iq type='set' id='{iqId}'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'><x xmlns='jabber:x:data' type='submit'>" +
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" +
        string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>")) +
        $"</x><set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></query></iq>";

    private async Task<Answer> AskAsync(string rsm, params (string Var, string Value)[] fields)
    {
        var queryId = "q" + Guid.NewGuid().ToString("N");
        var iqId = "i" + queryId;
        var clock = Stopwatch.StartNew();
        await _alice.SendRawAsync(Query(queryId, iqId, rsm, fields));
        var results = new List<Element>();
        while (true)
        {
            // XEP-0313 §4.2: every result comes before the iq answer that ends the query.
            var e = await _alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == iqId
                || e.Name == "message" && e.Child("result", Ns.Mam)?.Attr("queryid") == queryId, TimeSpan.FromSeconds(60));
            if (e.Name == "iq")
            {
                TestContext.Out.WriteLine($"{storage}: {results.Count} results in {clock.Elapsed.TotalMilliseconds:0} ms");
                Assert.That(e.Attr("type"), Is.EqualTo("result"), e.ToString());
                return new Answer(results, e, clock.Elapsed);
            }
            results.Add(e.Child("result", Ns.Mam)!);
        }
    }

    [Test, Order(1)]
    public async Task A_query_from_years_ago_with_a_huge_max_gets_one_capped_page_of_the_oldest_messages_promptly()
    {
        var answer = await AskAsync("<max>1000000</max>", ("start", Stamp(Oldest.AddYears(-5))));

        // XEP-0313 §4.1.4 and XEP-0059 §2.1: the server caps the page and says there is more.
        Assert.That(answer.Results, Has.Count.EqualTo(PageCap));
        Assert.That(answer.Complete, Is.Not.EqualTo("true"));
        Assert.That(answer.Bodies, Is.Unique);
        Assert.That(answer.Bodies.Max(), Is.LessThan(1000), "the page starts at the old end of the range");
        Assert.That(answer.Iq.Child("fin", Ns.Mam)!.Child("set", Ns.Rsm)!.ChildText("last", Ns.Rsm), Is.Not.Null, "RSM says where to go on");
        Assert.That(answer.Elapsed, Is.LessThan(Prompt));
    }

    [Test, Order(2)]
    public async Task The_last_page_of_the_whole_range_is_read_from_the_near_end_promptly()
    {
        // XEP-0059 §2.5: an empty <before/> asks for the last page.
        var answer = await AskAsync("<max>1000000</max><before/>", ("start", Stamp(Oldest.AddYears(-5))), ("end", Stamp(Newest.AddYears(5))));

        Assert.That(answer.Results, Has.Count.EqualTo(PageCap));
        Assert.That(answer.Bodies.Min(), Is.GreaterThanOrEqualTo(Messages - 1000), "the newest messages");
        Assert.That(answer.Elapsed, Is.LessThan(Prompt));
    }

    [Test, Order(3)]
    public async Task A_with_filter_that_matches_only_the_oldest_messages_of_a_long_range_answers_promptly()
    {
        var answer = await AskAsync("<max>1000000</max>", ("with", Rare), ("start", Stamp(Oldest.AddYears(-5))));

        Assert.That(answer.Bodies, Is.EquivalentTo(new[] { 10, 20, 30 }));
        Assert.That(answer.Complete, Is.EqualTo("true"));
        Assert.That(answer.Elapsed, Is.LessThan(Prompt));
    }

    [Test, Order(4)]
    public async Task A_range_before_the_archive_begins_is_answered_empty_and_complete_promptly()
    {
        var answer = await AskAsync("<max>1000000</max>", ("start", Stamp(Oldest.AddYears(-10))), ("end", Stamp(Oldest.AddYears(-4))));

        Assert.That(answer.Results, Is.Empty);
        Assert.That(answer.Complete, Is.EqualTo("true"));
        Assert.That(answer.Elapsed, Is.LessThan(Prompt));
    }

    [Test, Order(5)]
    public async Task A_flood_of_long_range_queries_meets_the_iq_rate_with_policy_violation_wait()
    {
        await Task.Delay(2000); // the bucket holds tokens again after the queries above
        // Forty whole-archive queries at once, each asking for everything: only the burst is answered with pages.
        var sb = new StringBuilder();
        for (int i = 0; i < 40; i++) sb.Append(Query($"flood{i}", $"flood{i}", "<max>1000000</max>", ("start", Stamp(Oldest.AddYears(-5)))));
        var clock = Stopwatch.StartNew();
        await _alice.SendRawAsync(sb.ToString());
        var answers = new List<Element>();
        int results = 0;
        while (answers.Count < 40)
        {
            var e = await _alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id")!.StartsWith("flood", StringComparison.Ordinal)
                || e.Name == "message" && e.Child("result", Ns.Mam)?.Attr("queryid")?.StartsWith("flood", StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(60));
            if (e.Name == "iq") answers.Add(e);
            else results++;
        }
        TestContext.Out.WriteLine($"{storage}: 40 queries answered in {clock.Elapsed.TotalMilliseconds:0} ms, {results} results sent");
        var refused = answers.Where(a => a.Attr("type") == "error").ToList();
        var served = answers.Count(a => a.Attr("type") == "result");
        // The burst of 12 less the four queries above, plus one a second refilled meanwhile (more on a slow machine).
        Assert.That(served, Is.InRange(8, 24));
        Assert.That(refused, Has.Count.GreaterThanOrEqualTo(16), "most of the flood is refused");
        Assert.That(results, Is.EqualTo(served * PageCap), "each served query got one capped page");
        foreach (var error in refused)
        {
            var e = error.Child("error", Ns.Client)!;
            // RFC 6120 §8.3.3.12: 'wait', the same query is answered once the client slows down.
            Assert.That(e.Attr("type"), Is.EqualTo("wait"), error.ToString());
            Assert.That(e.Child("policy-violation", Ns.StanzaErrors), Is.Not.Null, error.ToString());
        }
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)));
    }
}
