using Npgsql;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

/// The server on PostgreSQL (Xmpp:Storage:Provider = postgresql) over real sockets: the offline spool, a MAM query
/// and the roster, each across a restart onto a fresh data folder, so nothing can have come from the embedded files.
[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresProtocolTests
{
    private readonly PostgresTestDatabase _database = new("protocol");
    private int _queries;

    [SetUp]
    public Task Empty() => _database.ResetAsync();

    private async Task<TestServer> StartAsync() =>
        await TestServer.StartAsync(configure: TestServer.WithPostgres(await _database.ConnectionStringAsync()));

    private static async Task<TestClient> Online(TestServer s, string user, string resource)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        await c.SendAsync("<presence/>");
        return c;
    }

    private static async Task Settle(TestClient c) =>
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    private async Task<long> RowsAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(await _database.ConnectionStringAsync());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Test]
    public async Task Offline_messages_survive_a_restart_and_arrive_once_in_order()
    {
        await using (var first = await StartAsync())
        {
            await first.AddUserAsync("alice", "alice-pw");
            await first.AddUserAsync("bob", "bob-pw");
            await using var alice = await Online(first, "alice", "pc");
            for (var i = 1; i <= 25; i++)
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>message {i}</body></message>");
            // The answer to a later IQ says everything spooled before it is committed.
            await Settle(alice);
        }
        Assert.That(await RowsAsync("SELECT count(*) FROM archive_offline WHERE owner = 'bob'"), Is.EqualTo(25));

        await using var second = await StartAsync();
        await using (var bob = await Online(second, "bob", "phone"))
        {
            var ids = new List<string?>();
            for (var i = 0; i < 25; i++)
                ids.Add((await bob.ReceiveAsync("message")).Attr("id"));
            Assert.That(ids, Is.EqualTo(Enumerable.Range(1, 25).Select(i => "m" + i)));
            Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null);
        }
        await using var again = await Online(second, "bob", "tablet");
        await Settle(again);
        Assert.That(await again.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null, "delivered once");
    }

    [Test]
    public async Task Archived_chat_is_paged_from_the_newest_end_after_a_restart()
    {
        await using (var first = await StartAsync())
        {
            await first.AddUserAsync("alice", "alice-pw");
            await first.AddUserAsync("bob", "bob-pw");
            await using var bob = await Online(first, "bob", "phone");
            await using var alice = await Online(first, "alice", "pc");
            for (var i = 1; i <= 30; i++)
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='c{i}'><body>{i}</body></message>");
            for (var i = 1; i <= 30; i++)
                await bob.ReceiveAsync("message");
            await Settle(alice);
        }

        await using var second = await StartAsync();
        await using var reader = await Online(second, "alice", "laptop");
        // XEP-0313 §4.1.3 with XEP-0059 §2.5: an empty <before/> asks for the last page.
        var (last, lastFin) = await QueryAsync(reader, "<max>10</max><before/>");
        Assert.That(last, Is.EqualTo(Enumerable.Range(21, 10).Select(i => i.ToString())));
        Assert.That(lastFin.Attr("complete"), Is.Null.Or.EqualTo("false"));
        var set = lastFin.Child("set", Ns.Rsm)!;
        Assert.That(set.ChildText("count", Ns.Rsm), Is.EqualTo("30"));

        var (previous, _) = await QueryAsync(reader, $"<max>10</max><before>{set.ChildText("first", Ns.Rsm)}</before>");
        Assert.That(previous, Is.EqualTo(Enumerable.Range(11, 10).Select(i => i.ToString())));
    }

    private async Task<(List<string> Bodies, Element Fin)> QueryAsync(TestClient c, string rsm)
    {
        var queryId = "q" + Interlocked.Increment(ref _queries);
        var answer = await c.IqAsync(
            $"<iq type='set'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'><set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></query></iq>",
            TimeSpan.FromSeconds(30));
        var bodies = new List<string>();
        // Results precede the iq answer on the same stream, so they are already buffered.
        while (await c.TryReceiveAsync(e => e.Name == "message" && e.Child("result", Ns.Mam)?.Attr("queryid") == queryId,
                   TimeSpan.FromMilliseconds(1)) is { } m)
            bodies.Add(m.Child("result", Ns.Mam)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!.ChildText("body", Ns.Client)!);
        Assert.That(answer.Attr("type"), Is.EqualTo("result"), answer.ToString());
        return (bodies, answer.Child("fin", Ns.Mam)!);
    }

    [Test]
    public async Task Roster_and_its_version_survive_a_restart()
    {
        string version;
        await using (var first = await StartAsync())
        {
            await first.AddUserAsync("romeo", "romeo-pw");
            await using var romeo = await TestClient.ConnectAsync(first, "romeo", "romeo-pw", "orchard");
            await romeo.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
            var set = await romeo.IqAsync(
                "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' name='Juliet'><group>Capulets</group></item></query></iq>");
            Assert.That(set.Attr("type"), Is.EqualTo("result"));
            var push = await romeo.ReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "set" && e.Child("query", Ns.Roster) is not null);
            version = push.Child("query", Ns.Roster)!.Attr("ver")!;
        }

        await using var second = await StartAsync();
        await using var again = await TestClient.ConnectAsync(second, "romeo", "romeo-pw", "balcony");
        var roster = await again.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster' ver=''/></iq>");
        var query = roster.Child("query", Ns.Roster)!;
        Assert.That(query.Attr("ver"), Is.EqualTo(version));
        var item = query.Elements("item", Ns.Roster).Single();
        Assert.That((item.Attr("jid"), item.Attr("name"), item.ChildText("group", Ns.Roster)), Is.EqualTo(("juliet@localhost", "Juliet", "Capulets")));
        // XEP-0237 §2.4: the client's copy is current, so the answer is empty.
        var current = await again.IqAsync($"<iq type='get'><query xmlns='jabber:iq:roster' ver='{version}'/></iq>");
        Assert.That(current.Elements().Any(), Is.False, current.ToString());
    }
}
