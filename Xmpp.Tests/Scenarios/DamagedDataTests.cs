using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

/// A damaged data file at start: the real server either repairs what a crash can leave (a torn last record, with a
/// log line) or stops with one line naming the file and what to do, exit code 3, and changes nothing.
[TestFixture]
[NonParallelizable]
[Category("Faults")]
public sealed class DamagedDataTests
{
    private string _dir = null!;
    private int _c2s, _tls;

    [SetUp]
    public async Task Prepare()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-damaged-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _c2s = TestServer.FreePort();
        _tls = TestServer.FreePort();
        foreach (var (u, p) in new[] { ("alice", "alice-pw"), ("bob", "bob-pw") })
        {
            var r = await ServerProcess.RunAsync(_dir, ["user", "add", u, p, .. Args()]);
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Output);
        }
    }

    [TearDown]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    private string Data => Path.Combine(_dir, "data");

    private string Segment => Path.Combine(Data, "archive", "offline", "00000001.log");

    private string[] Args() => ServerProcess.LoopbackArgs(_c2s, _tls, Data, Path.Combine(_dir, "certs"));

    // Alice spools 20 messages for bob, a pong confirms them stored, and the server is killed: the index lags, so the
    // next start replays the segment.
    private async Task SpoolTwentyThenKillAsync()
    {
        await using var server = await ServerProcess.StartAsync(_dir, _c2s, Args());
        await using (var alice = await TestClient.ConnectAsync(new ServerEndpoint("127.0.0.1", _c2s, _tls), "alice", "alice-pw", "pc"))
        {
            for (var i = 1; i <= 20; i++)
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='d{i}'><body>{i}</body></message>");
            await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        }
        server.KillHard();
    }

    private async Task<List<string?>> BobsOfflineMessagesAsync()
    {
        await using var bob = await TestClient.ConnectAsync(new ServerEndpoint("127.0.0.1", _c2s, _tls), "bob", "bob-pw", "phone");
        await bob.SendAsync("<presence/>");
        var ids = new List<string?>();
        while (await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(2)) is { } m)
            ids.Add(m.Attr("id"));
        return ids;
    }

    private static void AssertOneClearLine(string output, string path)
    {
        Assert.That(output, Does.Contain("error: " + path + " is damaged"));
        Assert.That(output, Does.Contain("xmppd restore"));
        Assert.That(output, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public async Task A_damaged_database_file_stops_the_start_with_one_line_naming_it()
    {
        var db = Path.Combine(Data, "xmpp.db");
        var bytes = await File.ReadAllBytesAsync(db);
        Array.Fill(bytes, (byte)0x5A, 0, 64); // the header page's signature
        await File.WriteAllBytesAsync(db, bytes);

        var (exit, output) = await ServerProcess.RunAsync(_dir, ["run", .. Args()]);
        Assert.That(exit, Is.EqualTo(3), output);
        AssertOneClearLine(output, db);
        Assert.That(await File.ReadAllBytesAsync(db), Is.EqualTo(bytes), "left as it was, for the operator");
    }

    [Test]
    public async Task Damage_in_the_middle_of_a_segment_stops_the_start_instead_of_dropping_the_records_after_it()
    {
        await SpoolTwentyThenKillAsync();
        var before = await File.ReadAllBytesAsync(Segment);
        var damaged = (byte[])before.Clone();
        damaged[24] ^= 0xFF; // inside the first record's body (its stamp): its checksum fails, the second record is whole
        await File.WriteAllBytesAsync(Segment, damaged);

        var (exit, output) = await ServerProcess.RunAsync(_dir, ["run", .. Args()]);
        Assert.That(exit, Is.EqualTo(3), output);
        AssertOneClearLine(output, Segment);
        Assert.That((await File.ReadAllBytesAsync(Segment)).Length, Is.EqualTo(before.Length), "nothing cut off");
    }

    [Test]
    public async Task A_torn_last_record_is_cut_off_with_a_log_line_and_every_whole_record_kept()
    {
        await SpoolTwentyThenKillAsync();
        var whole = await File.ReadAllBytesAsync(Segment);
        // What a crash inside a write leaves: the start of a record (its header says longer than what follows).
        await using (var file = new FileStream(Segment, FileMode.Append))
            await file.WriteAsync(whole.AsMemory(0, 30));

        await using var server = await ServerProcess.StartAsync(_dir, _c2s, Args());
        Assert.That(server.Output, Does.Contain("cut short by a crash"));
        Assert.That((await File.ReadAllBytesAsync(Segment)).Length, Is.EqualTo(whole.Length));
        Assert.That(await BobsOfflineMessagesAsync(), Is.EqualTo(Enumerable.Range(1, 20).Select(i => "d" + i)));
    }
}
