using System.Diagnostics;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

/// The real server on a small tmpfs that the test fills up. The tmpfs is mounted in a private mount namespace
/// (unshare --mount --propagation private), so the machine's own mounts are never touched; the namespace ends with the
/// server, so the wrapper shell copies the data folder in before the server starts and out after it stops.
[TestFixture]
[NonParallelizable]
[Category("Faults")]
public sealed class DiskFullTests
{
    private string _dir = null!, _mount = null!;
    private int _c2s, _tls, _http;

    [SetUp]
    public async Task Prepare()
    {
        if (Environment.UserName != "root" || !File.Exists("/usr/bin/unshare") || !File.Exists("/usr/bin/nsenter"))
            Assert.Ignore("needs root and util-linux's unshare and nsenter to mount a private tmpfs");
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-full-" + Guid.NewGuid().ToString("N"));
        _mount = Path.Combine(_dir, "mnt");
        Directory.CreateDirectory(_mount);
        _c2s = TestServer.FreePort();
        _tls = TestServer.FreePort();
        foreach (var (u, p) in new[] { ("alice", "alice-pw"), ("bob", "bob-pw") })
        {
            var r = await ServerProcess.RunAsync(_dir, ["user", "add", u, p, .. Args(Path.Combine(_dir, "data"))]);
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Output);
        }
    }

    [TearDown]
    public void Cleanup()
    {
        if (_dir is not null && Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string[] Args(string dataDir) =>
    [
        "--domain", "localhost", "--c2s-port", _c2s.ToString(), "--c2s-tls-port", _tls.ToString(),
        "--data-dir", dataDir, "--cert-dir", Path.Combine(_dir, "certs"), "--listen", "127.0.0.1",
        "--http-port", _http.ToString(), "--log-level", "Warning",
    ];

    // sh $1=mount point $2=the data folder outside: mount a 24 MB tmpfs, copy the data in, run the server (not exec'd,
    // so the shell outlives it), then copy the data back out before the namespace goes away.
    private const string Script = """
        mount -t tmpfs -o size=24m tmpfs "$1" || exit 90
        mkdir -p "$1/data" && cp -a "$2/." "$1/data/" || exit 91
        m="$1"; o="$2"; shift 2
        "$@"; code=$?
        rm -rf "$o" && cp -a "$m/data" "$o" || exit 92
        exit $code
        """;

    private Task<ServerProcess> StartAsync() => ServerProcess.StartWrappedAsync(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", Script, "sh", _mount, Path.Combine(_dir, "data")],
        _dir, _c2s, Args(Path.Combine(_mount, "data")));

    // Runs a shell command inside the server's mount namespace, where the tmpfs is.
    private static void InNamespace(ServerProcess server, string command)
    {
        using var p = Process.Start(new ProcessStartInfo("nsenter", ["-t", server.Pid.ToString(), "-m", "sh", "-c", command])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
        p.WaitForExit(30_000);
    }

    // SIGTERM to the server itself (the wrapper shell's child), so that the shell copies the data out.
    private static async Task StopAsync(ServerProcess server)
    {
        var children = File.ReadAllText($"/proc/{server.Pid}/task/{server.Pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(children, Has.Length.EqualTo(1), "the wrapper shell runs the server");
        using (var kill = Process.Start("kill", ["-TERM", children[0]])) kill!.WaitForExit();
        Assert.That(await server.WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.EqualTo(0), server.Output);
    }

    private static string Message(string id, int padding = 0) =>
        $"<message to='bob@localhost' type='chat' id='{id}'><body>{id}{new string(' ', padding)}</body></message>";

    [Test]
    public async Task A_full_disk_holds_acknowledgements_refuses_new_offline_messages_with_wait_and_recovers_when_space_returns()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        var m6Refused = false;
        await using (var server = await StartAsync())
        {
            await using var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
            await alice.SendAsync("<enable xmlns='urn:xmpp:sm:3'/>");
            await alice.ReceiveAsync(e => e.Is("enabled", Ns.StreamManagement));
            for (var i = 1; i <= 5; i++) await alice.SendAsync(Message("m" + i));
            await alice.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
            Assert.That((await alice.ReceiveAsync(e => e.Is("a", Ns.StreamManagement))).Attr("h"), Is.EqualTo("5"));

            // dd stops at ENOSPC: the tmpfs is full.
            InNamespace(server, $"dd if=/dev/zero of='{_mount}/filler' bs=1M 2>/dev/null; sync");

            // m6 is taken for the spool but cannot be written: XEP-0198 §4 lets an <a/> count only what the server
            // has handled, and handled here means stored, so no <a/> may come while it waits for space.
            // 20 KB, more than the free end of the segment file's last page, which tmpfs has already allocated.
            await alice.SendAsync(Message("m6", 20_000));
            await alice.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
            await Task.Delay(1500);
            // While the disk is full, a new message for the offline spool is refused: resource-constraint, type
            // wait (RFC 6120 §8.3.3.18, §8.3.2: try again later), with the message's id.
            await alice.SendAsync(Message("m7"));
            // m6 itself may be refused the same way: its copy for alice's own archive (MAM) may hit the full disk
            // first, and from then on the spool takes nothing new. Either way the sender knows.
            var refusedIds = new List<string?>();
            while (!refusedIds.Contains("m7"))
            {
                var refused = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error", TimeSpan.FromSeconds(10));
                refusedIds.Add(refused.Attr("id"));
                var error = refused.Child("error", Ns.Client)!;
                Assert.That(error.Attr("type"), Is.EqualTo("wait"));
                Assert.That(error.Child("resource-constraint", Ns.StanzaErrors), Is.Not.Null, refused.ToString());
            }
            Assert.That(refusedIds, Is.SubsetOf(new[] { "m6", "m7" }));
            m6Refused = refusedIds.Contains("m6");
            Assert.That(await alice.TryReceiveAsync(e => e.Is("a", Ns.StreamManagement), TimeSpan.FromSeconds(2)), Is.Null,
                "no acknowledgement for a message that is not on disk");

            InNamespace(server, $"rm -f '{_mount}/filler'");
            // The held write goes through at the next retry; the withheld <a/> follows, counting m6 (and the refused
            // m7, which was handled: its error was returned).
            var acked = await alice.ReceiveAsync(e => e.Is("a", Ns.StreamManagement), TimeSpan.FromSeconds(15));
            Assert.That(int.Parse(acked.Attr("h")!), Is.GreaterThanOrEqualTo(6));
            await alice.SendAsync(Message("m8"));
            await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", TimeSpan.FromSeconds(15));
            await alice.CloseAsync();

            await StopAsync(server);
            var output = server.Output;
            // One line per store and outage (the spool's and alice's archive's logs), not one per retry, and one
            // when that store writes again.
            Assert.That(CountOf(output, ": the disk is full"), Is.GreaterThanOrEqualTo(1), output);
            foreach (var store in new[] { "offline", "mam" })
            {
                Assert.That(CountOf(output, $"Storage {store}: the disk is full"), Is.LessThanOrEqualTo(1), output);
                Assert.That(CountOf(output, $"Storage {store}: writing again"), Is.EqualTo(CountOf(output, $"Storage {store}: the disk is full")), output);
            }
        }

        // Restarted on the data the first run left: everything acknowledged is there, once, in order; m7 is not.
        await using var restarted = await StartAsync();
        await using var bob = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "phone");
        await bob.SendAsync("<presence/>");
        var ids = new List<string?>();
        while (await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(3)) is { } m)
        {
            ids.Add(m.Attr("id"));
            Assert.That(m.ChildText("body", Ns.Client)!.TrimEnd(), Is.EqualTo(m.Attr("id")));
        }
        Assert.That(ids, Is.EqualTo(m6Refused ? new[] { "m1", "m2", "m3", "m4", "m5", "m8" } : new[] { "m1", "m2", "m3", "m4", "m5", "m6", "m8" }));
    }

    [Test]
    public async Task An_upload_on_a_full_disk_is_refused_with_507_and_retry_after_and_accepted_once_space_returns()
    {
        _http = TestServer.FreePort();
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        await using var server = await StartAsync();
        await using var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
        using var http = UploadClient.Http(null!); // the TestServer is not used: the URL's port, on loopback
        var body = new byte[2 * 1024 * 1024];
        Random.Shared.NextBytes(body);

        async Task<HttpResponseMessage> PutAsync(string name)
        {
            var reply = await alice.IqAsync($"<iq type='get' to='upload.localhost'><request xmlns='{Ns.HttpUpload}' filename='{name}' size='{body.Length}'/></iq>");
            var put = reply.Child("slot", Ns.HttpUpload)?.Child("put", Ns.HttpUpload)?.Attr("url");
            Assert.That(put, Is.Not.Null, reply.ToString());
            return await UploadClient.PutAsync(http, put!, body, null);
        }

        InNamespace(server, $"dd if=/dev/zero of='{_mount}/filler' bs=1M 2>/dev/null; sync");
        foreach (var name in new[] { "a.bin", "b.bin" })
        {
            using var refused = await PutAsync(name);
            // RFC 4918 §11.5: 507 Insufficient Storage; Retry-After says when to come back (RFC 9110 §10.2.3).
            Assert.That((int)refused.StatusCode, Is.EqualTo(507), server.Output);
            Assert.That(refused.Headers.RetryAfter, Is.Not.Null);
        }
        InNamespace(server, $"rm -f '{_mount}/filler'");
        using (var stored = await PutAsync("c.bin"))
            Assert.That(stored.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.Created));
        Assert.That(CountOf(server.Output, "Uploads: the disk is full"), Is.EqualTo(1), "once per outage:\n" + server.Output);
        Assert.That(server.Output, Does.Contain("Uploads: storing files again"));
    }

    private static string RosterSet(string id, string contact) =>
        $"<iq type='set' id='{id}'><query xmlns='{Ns.Roster}'><item jid='{contact}@localhost'/></query></iq>";

    private static string Publish(string id, string item) =>
        $"<iq type='set' id='{id}'><pubsub xmlns='{Ns.PubSub}'><publish node='urn:test:disk'><item id='{item}'><entry xmlns='urn:test'>{item}</entry></item></publish></pubsub></iq>";

    private static bool Answer(Element e, string id) => e.Name == "iq" && e.Attr("id") == id && e.Attr("type") is "result" or "error";

    private static async Task<List<string>> RosterOfAsync(TestClient client)
    {
        var roster = await client.IqAsync($"<iq type='get'><query xmlns='{Ns.Roster}'/></iq>");
        return roster.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).Select(i => i.Attr("jid")!).Order().ToList();
    }

    // What the roster set, PEP publish (alice's) and vCard set (bob's) of the full-disk test left, read back.
    private static async Task AssertStoredAsync(TestClient alice, TestClient bob)
    {
        Assert.That(await RosterOfAsync(alice), Is.EqualTo(new[] { "before@localhost", "carol@localhost" }));
        Assert.That(await RosterOfAsync(bob), Is.Empty, "dave was refused");
        var items = await alice.IqAsync($"<iq type='get'><pubsub xmlns='{Ns.PubSub}'><items node='urn:test:disk'/></pubsub></iq>");
        Assert.That(items.Attr("type"), Is.EqualTo("result"), items.ToString());
        Assert.That(items.ToString(), Does.Contain("p1-item"));
        var vcard = await bob.IqAsync($"<iq type='get'><vCard xmlns='{Ns.VCard}'/></iq>");
        Assert.That(vcard.Child("vCard", Ns.VCard)?.ChildText("FN", Ns.VCard), Is.EqualTo("Bob Full-Disk"), vcard.ToString());
    }

    [Test]
    public async Task Roster_pep_and_vcard_writes_on_a_full_disk_are_answered_only_once_stored_and_later_ones_get_a_wait_error()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        await using (var server = await StartAsync())
        {
            // A stream's stanzas are handled in order (RFC 6120 §10.1), so a held IQ holds its own stream: each write
            // comes from a session of its own, and the reads from another.
            await using var pc = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
            await using var phone = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "phone");
            await using var bob = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "pc");
            // bob's roster, not alice's: changes to one account's roster wait for each other (RosterService's lock).
            await using var late = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "late");
            await using var reader = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "reader");
            Assert.That((await pc.IqAsync(X.Parse(RosterSet("x", "before")))).Attr("type"), Is.EqualTo("result"));

            InNamespace(server, $"dd if=/dev/zero of='{_mount}/filler' bs=1M 2>/dev/null; sync");
            await pc.SendAsync(RosterSet("r1", "carol"));
            await phone.SendAsync(Publish("p1", "p1-item"));
            await bob.SendAsync($"<iq type='set' id='v1'><vCard xmlns='{Ns.VCard}'><FN>Bob Full-Disk</FN></vCard></iq>");
            // Held, not failed: no answer at all while the disk is full (a result now would promise what is not stored).
            Assert.That(await pc.TryReceiveAsync(e => Answer(e, "r1"), TimeSpan.FromSeconds(3)), Is.Null);
            Assert.That(await phone.TryReceiveAsync(e => Answer(e, "p1"), TimeSpan.Zero), Is.Null);
            Assert.That(await bob.TryReceiveAsync(e => Answer(e, "v1"), TimeSpan.Zero), Is.Null);

            // Past the grace period (2 s) a new write is refused at once: resource-constraint, type wait
            // (RFC 6120 §8.3.3.18), and nothing of it is stored.
            Element refused = null!;
            // Within seconds: its roster read may wait for the database to be opened again after a failed attempt.
            try { refused = await late.IqAsync(X.Parse(RosterSet("r2", "dave")), TimeSpan.FromSeconds(15)); }
            catch (TimeoutException e) { Assert.Fail(e.Message + "\n" + server.Output); }
            Assert.That(refused.Attr("type"), Is.EqualTo("error"), refused.ToString());
            var error = refused.Child("error", Ns.Client)!;
            Assert.That(error.Attr("type"), Is.EqualTo("wait"));
            Assert.That(error.Child("resource-constraint", Ns.StanzaErrors), Is.Not.Null, refused.ToString());
            // Reads still work (LiteDB closed itself on the error; the writer opened the file again).
            Assert.That(await RosterOfAsync(reader), Is.EqualTo(new[] { "before@localhost" }));

            InNamespace(server, $"rm -f '{_mount}/filler'");
            // The held writes go through at the next attempt, by themselves, each answered with a result.
            foreach (var (client, id) in new[] { (pc, "r1"), (phone, "p1"), (bob, "v1") })
            {
                var answer = await client.ReceiveAsync(e => Answer(e, id), TimeSpan.FromSeconds(20));
                Assert.That(answer.Attr("type"), Is.EqualTo("result"), answer + "\n" + server.Output);
            }
            await AssertStoredAsync(reader, bob);
            await StopAsync(server);
            var output = server.Output;
            Assert.That(CountOf(output, "Storage database: the disk is full"), Is.EqualTo(1), "once per outage:\n" + output);
            Assert.That(CountOf(output, "Storage database: writing again"), Is.EqualTo(1), output);
        }

        await using var restarted = await StartAsync();
        await using var alice2 = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
        await using var bob2 = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "pc");
        await AssertStoredAsync(alice2, bob2);
    }

    [Test]
    public async Task After_kill_9_during_a_full_disk_every_acknowledged_roster_write_is_there_and_the_database_opens()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        var acknowledged = new List<string>();
        await using (var server = await StartAsync())
        {
            await using var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
            foreach (var contact in new[] { "a1", "a2" })
            {
                Assert.That((await alice.IqAsync(X.Parse(RosterSet("s-" + contact, contact)))).Attr("type"), Is.EqualTo("result"));
                acknowledged.Add(contact + "@localhost");
            }
            // A first outage that ends: a3 is held, then stored and acknowledged by the database opened afresh.
            InNamespace(server, $"dd if=/dev/zero of='{_mount}/filler' bs=1M 2>/dev/null; sync");
            await alice.SendAsync(RosterSet("s-a3", "a3"));
            Assert.That(await alice.TryReceiveAsync(e => Answer(e, "s-a3"), TimeSpan.FromSeconds(1.5)), Is.Null);
            InNamespace(server, $"rm -f '{_mount}/filler'");
            Assert.That((await alice.ReceiveAsync(e => Answer(e, "s-a3"), TimeSpan.FromSeconds(20))).Attr("type"), Is.EqualTo("result"));
            acknowledged.Add("a3@localhost");

            // A second outage, ended by kill -9 while a4 is held.
            InNamespace(server, $"dd if=/dev/zero of='{_mount}/filler2' bs=1M 2>/dev/null; sync");
            await alice.SendAsync(RosterSet("s-a4", "a4"));
            Assert.That(await alice.TryReceiveAsync(e => Answer(e, "s-a4"), TimeSpan.FromSeconds(1.5)), Is.Null);
            var children = File.ReadAllText($"/proc/{server.Pid}/task/{server.Pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(children, Has.Length.EqualTo(1), "the wrapper shell runs the server");
            using (var kill = Process.Start("kill", ["-KILL", children[0]])) kill!.WaitForExit();
            Assert.That(await server.WaitForExitAsync(TimeSpan.FromSeconds(60)), Is.EqualTo(137), server.Output);
        }

        await using var restarted = await StartAsync();
        await using var again = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
        var roster = await RosterOfAsync(again);
        // Never acknowledged, a4 may be there or not; everything acknowledged is.
        Assert.That(roster.Except(["a4@localhost"]), Is.EqualTo(acknowledged));
        Assert.That((await again.IqAsync(X.Parse(RosterSet("s-a5", "a5")))).Attr("type"), Is.EqualTo("result"), "the database takes writes again");
    }

    private static int CountOf(string text, string what)
    {
        int count = 0, at = 0;
        while ((at = text.IndexOf(what, at, StringComparison.Ordinal)) >= 0) { count++; at += what.Length; }
        return count;
    }
}
