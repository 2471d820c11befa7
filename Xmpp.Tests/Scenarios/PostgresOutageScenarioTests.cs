using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

/// PostgreSQL crashes under a running server: the sender's session stays up, its XEP-0198 acks are held back while
/// what it sent cannot be stored, and once the database has recovered the acks come and the offline recipient gets
/// every message once, in order; meanwhile a read that cannot be served is refused as temporary. A private
/// PostgreSQL instance, so no other test sees the outage.
[TestFixture]
[Category("PostgreSql")]
[NonParallelizable]
public sealed class PostgresOutageScenarioTests
{
    private PostgresInstance _instance = null!;

    [OneTimeSetUp]
    public async Task StartInstance() => _instance = await PostgresInstance.StartPrivateAsync();

    [OneTimeTearDown]
    public void StopInstance() => _instance.Stop();

    [Test]
    public async Task Acks_wait_for_the_database_to_come_back_and_nothing_acknowledged_is_lost()
    {
        var connectionString = _instance.ConnectionString(await _instance.CreateDatabaseAsync("scenario"));
        await using var server = await TestServer.StartAsync(configure: TestServer.WithPostgres(connectionString));
        await server.AddUserAsync("alice", "alice-pw");
        await server.AddUserAsync("bob", "bob-pw");
        await server.AddUserAsync("carol", "carol-pw");
        await using var carol = await TestClient.ConnectAsync(server, "carol", "carol-pw", "desk");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        await alice.SendAsync("<enable xmlns='urn:xmpp:sm:3'/>");
        await alice.ReceiveAsync(e => e.Is("enabled", Ns.StreamManagement));
        await alice.SendAsync("<presence/>");
        // One message before the outage: the server then knows bob's spool, as it would after any earlier message.
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m0'><body>0</body></message>");
        await alice.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        Assert.That((await alice.ReceiveAsync(e => e.Is("a", Ns.StreamManagement))).Attr("h"), Is.EqualTo("2"));

        _instance.StopServer(crash: true);
        for (var i = 1; i <= 20; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message>");
        await alice.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");

        // XEP-0198 §4: an ack says the server has handled the stanzas; with nowhere to store them it has not.
        Assert.That(await alice.TryReceiveAsync(e => e.Is("a", Ns.StreamManagement), TimeSpan.FromSeconds(2)), Is.Null);
        Assert.That(alice.StreamEnded, Is.False, "the session stays up");
        // A request that needs to read what cannot be read now is refused as temporary (RFC 6120 §8.3.2: 'wait').
        var read = await carol.IqAsync("<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>",
            TimeSpan.FromSeconds(30));
        Assert.That(read.Attr("type"), Is.EqualTo("error"), read.ToString());
        Assert.That(read.Child("error", Ns.Client)?.Attr("type"), Is.EqualTo("wait"), read.ToString());
        Assert.That(carol.StreamEnded, Is.False);

        await _instance.StartAgainAsync();
        var ack = await alice.ReceiveAsync(e => e.Is("a", Ns.StreamManagement), TimeSpan.FromSeconds(30));
        Assert.That(ack.Attr("h"), Is.EqualTo("22"));

        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "phone");
        await bob.SendAsync("<presence/>");
        var ids = new List<string?>();
        for (var i = 0; i <= 20; i++)
            ids.Add((await bob.ReceiveAsync("message")).Attr("id"));
        Assert.That(ids, Is.EqualTo(Enumerable.Range(0, 21).Select(i => "m" + i)));
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null, "each once");
        var again = await carol.IqAsync("<iq type='get'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
        Assert.That(again.Attr("type"), Is.EqualTo("result"), "the same session reads again once the database is back");
    }
}
