using System.Net.Sockets;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Server.Cli;
using Xmpp.Server.Hosting;
using Xmpp.Tests.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Issue 19: the admin CLI against a running server (the real xmppd binary as a process) goes through the server's
/// admin socket, and the data folder is held by one process at a time, so concurrent admin use loses nothing.
[TestFixture]
[NonParallelizable]
public sealed class AdminSocketTests
{
    private string _dir = null!;
    private int _c2s, _tls;

    [SetUp]
    public void Prepare()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-admin-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_dir);
        _c2s = TestServer.FreePort();
        _tls = TestServer.FreePort();
    }

    [TearDown]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    private string DataDir => Path.Combine(_dir, "data");
    private ServerEndpoint Endpoint => new("127.0.0.1", _c2s, _tls);

    private string[] Args(int? c2s = null, int? tls = null) =>
    [
        "--domain", "localhost", "--c2s-port", (c2s ?? _c2s).ToString(), "--c2s-tls-port", (tls ?? _tls).ToString(),
        "--data-dir", DataDir, "--cert-dir", Path.Combine(_dir, "certs"), "--listen", "127.0.0.1",
        "--http-port", "0", "--log-level", "Warning",
        // In-band registration on, without the per-address pause, for the concurrent registrations below.
        "--allow-registration", "true", "--Xmpp:Registration:MinSecondsBetweenPerIp=0",
    ];

    private Task<ServerProcess> StartServer() => ServerProcess.StartAsync(_dir, _c2s, Args());

    private Task<(int ExitCode, string Output)> Cli(params string[] words) => ServerProcess.RunAsync(_dir, [.. words, .. Args()]);

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// XEP-0077 §3.1 registration on a fresh stream; true when the server acknowledged it with a result.
    private async Task<bool> RegisterInBandAsync(string user, string password)
    {
        await using var c = await TestClient.OpenAsync(Endpoint);
        await c.SendRawAsync($"<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>{user}</username><password>{password}</password></query></iq>");
        var reply = await c.ReadElementAsync();
        return reply.Attr("type") == "result";
    }

    [Test]
    public async Task User_add_from_the_cli_while_clients_register_in_band_loses_no_acknowledged_account()
    {
        IReadOnlyList<string> inBand, fromCli;
        await using (var server = await StartServer())
        {
            // 60 in-band registrations from three clients at once, and 20 `xmppd user add` processes, four at a time.
            var registering = Enumerable.Range(0, 3).Select(w => Task.Run(async () =>
            {
                var acknowledged = new List<string>();
                for (int i = 0; i < 20; i++)
                {
                    var user = $"inband{w}x{i}";
                    if (await RegisterInBandAsync(user, user + "-password")) acknowledged.Add(user);
                }
                return acknowledged;
            })).ToList();
            var created = new List<string>();
            var problems = new List<string>();
            await Parallel.ForEachAsync(Enumerable.Range(0, 20), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
            {
                var r = await Cli("user", "add", $"cli{i}@localhost", $"cli{i}-password");
                lock (created)
                {
                    if (r.ExitCode == 0 && r.Output.Contains($"created cli{i}@localhost")) created.Add($"cli{i}");
                    else problems.Add($"cli{i}: exit {r.ExitCode}: {r.Output}");
                }
            });
            inBand = (await Task.WhenAll(registering)).SelectMany(a => a).ToList();
            fromCli = created;
            Assert.That(problems, Is.Empty);
            Assert.That(inBand, Has.Count.EqualTo(60), "every in-band registration was acknowledged");
            // A power cut right after the acknowledgements: what was acknowledged was committed.
            server.KillHard();
        }
        await using var restarted = await StartServer();
        var list = await Cli("user", "list");
        Assert.That(list.ExitCode, Is.EqualTo(0), list.Output);
        var expected = inBand.Concat(fromCli).Select(u => u + "@localhost").ToList();
        Assert.That(expected, Has.Count.EqualTo(80));
        Assert.That(Lines(list.Output), Is.EquivalentTo(expected));
        // The accounts work, not only list: one of each kind logs in.
        await using (await TestClient.ConnectAsync(Endpoint, "inband1x7", "inband1x7-password", "a")) { }
        await using (await TestClient.ConnectAsync(Endpoint, "cli13", "cli13-password", "b")) { }
    }

    [Test]
    public async Task A_second_server_on_the_same_data_folder_is_refused_with_the_folder_and_the_pid()
    {
        await using var server = await StartServer();
        var second = await ServerProcess.RunAsync(_dir, ["run", .. Args(TestServer.FreePort(), TestServer.FreePort())]);
        Assert.That(second.ExitCode, Is.EqualTo(1), second.Output);
        var errors = Lines(second.Output).Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
        Assert.That(errors, Has.Count.EqualTo(1), second.Output);
        Assert.That(errors[0], Does.Contain($"the data folder {DataDir} is in use").And.Contain($"PID {server.Pid}"));
        Assert.That(server.HasExited, Is.False, "the first server keeps running");
    }

    [Test]
    public async Task Kill_9_leaves_no_stale_lock_and_the_next_start_replaces_the_stale_socket()
    {
        var socket = Path.Combine(DataDir, "admin.sock");
        await using (var server = await StartServer())
        {
            Assert.That((await Cli("user", "add", "alice", "alice-password")).ExitCode, Is.EqualTo(0));
            server.KillHard();
        }
        Assert.That(File.Exists(socket), "the killed server could not remove its socket");
        var offline = await Cli("user", "list");
        Assert.That(offline.ExitCode, Is.EqualTo(0), "the CLI takes the lock the killed process held: " + offline.Output);
        Assert.That(Lines(offline.Output), Is.EqualTo(new[] { "alice@localhost" }));
        await using var restarted = await StartServer();
        var stats = await Cli("stats");
        Assert.That(stats.ExitCode, Is.EqualTo(0), stats.Output);
        Assert.That(Lines(stats.Output), Does.Contain("accounts 1").And.Some.StartsWith("uptime "), "answered by the new server");
    }

    [Test]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task The_admin_socket_is_owner_only_and_gone_after_a_clean_stop()
    {
        var socket = Path.Combine(DataDir, "admin.sock");
        var server = await StartServer();
        try
        {
            Assert.That(File.GetUnixFileMode(socket), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(await server.TerminateAsync(), Is.EqualTo(0));
            Assert.That(File.Exists(socket), Is.False);
            Assert.That(File.Exists(Path.Combine(DataDir, "xmppd.pid")), Is.False);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Test]
    public async Task Session_list_and_kick_go_through_the_server_and_kick_ends_a_real_clients_stream()
    {
        await using var server = await StartServer();
        Assert.That((await Cli("user", "add", "alice", "alice-password")).ExitCode, Is.EqualTo(0));
        await using var phone = await TestClient.ConnectAsync(Endpoint, "alice", "alice-password", "phone", sendPresence: true);
        await using var laptop = await TestClient.ConnectAsync(Endpoint, "alice", "alice-password", "laptop");
        // An IQ answered after the presence means the presence has been handled (a stream's stanzas go in order).
        await phone.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        var list = await Cli("session", "list");
        Assert.That(list.ExitCode, Is.EqualTo(0), list.Output);
        Assert.That(Lines(list.Output), Is.EqualTo(new[] { "alice@localhost/laptop unavailable priority 0", "alice@localhost/phone available priority 0" }));

        var kick = await Cli("session", "kick", "alice@localhost/phone");
        Assert.That(kick.ExitCode, Is.EqualTo(0), kick.Output);
        Assert.That(Lines(kick.Output), Is.EqualTo(new[] { "kicked alice@localhost/phone" }));
        var error = await phone.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement?.Name, Is.EqualTo(StreamErrors.PolicyViolation));
        Assert.That(await Wait.UntilAsync(() => phone.StreamEnded), "the kicked stream ends");
        Assert.That(laptop.StreamEnded, Is.False, "the other resource stays");
        Assert.That(await Wait.UntilAsync(async () => Lines((await Cli("stats")).Output).Contains("sessions 1")), "one session is left");

        var again = await Cli("session", "kick", "alice@localhost/phone");
        Assert.That(again.ExitCode, Is.EqualTo(1));
        Assert.That(again.Output, Does.Contain("alice@localhost/phone has no session"));
    }

    [Test]
    public async Task User_del_of_an_online_user_ends_its_session_and_the_account()
    {
        await using var server = await StartServer();
        Assert.That((await Cli("user", "add", "bob", "bob-password")).ExitCode, Is.EqualTo(0));
        await using var bob = await TestClient.ConnectAsync(Endpoint, "bob", "bob-password", "pc");
        var del = await Cli("user", "del", "bob@localhost");
        Assert.That(del.ExitCode, Is.EqualTo(0), del.Output);
        Assert.That(Lines(del.Output), Is.EqualTo(new[] { "deleted bob@localhost", "ended the session of bob@localhost/pc" }));
        var error = await bob.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement?.Name, Is.EqualTo(StreamErrors.NotAuthorized));
        Assert.That((await Cli("user", "list")).Output.Trim(), Is.Empty);
        // The server's existence cache was told too: the old password no longer logs in.
        var client = await TestClient.OpenAsync(Endpoint);
        await using (client)
            Assert.That(async () => await client.AuthenticateAsync("bob", "bob-password"), Throws.TypeOf<AuthenticationFailedException>());
    }

    [Test]
    public async Task Room_list_and_destroy_go_through_the_room_and_occupants_are_told()
    {
        const string room = "tea@conference.localhost";
        await using var server = await StartServer();
        Assert.That((await Cli("user", "add", "alice", "alice-password")).ExitCode, Is.EqualTo(0));
        await using var alice = await TestClient.ConnectAsync(Endpoint, "alice", "alice-password", "pc", sendPresence: true);
        await MucTestBase.CreateInstantAsync(alice, room);
        var configured = await MucTestBase.ConfigureAsync(alice, room, ("muc#roomconfig_persistentroom", "1"), ("muc#roomconfig_roomname", "Tea"));
        Assert.That(configured.Attr("type"), Is.EqualTo("result"), configured.ToString());

        var list = await Cli("room", "list");
        Assert.That(list.ExitCode, Is.EqualTo(0), list.Output);
        Assert.That(Lines(list.Output), Is.EqualTo(new[] { $"{room} persistent public \"Tea\"" }));

        var destroy = await Cli("room", "destroy", room, "closing time");
        Assert.That(destroy.ExitCode, Is.EqualTo(0), destroy.Output);
        // XEP-0045 §10.9: the occupant leaves with a <destroy/> carrying the reason.
        var gone = await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "unavailable" && e.Attr("from") == room + "/owner");
        Assert.That(gone.Child("x", Ns.MucUser)?.Child("destroy", Ns.MucUser)?.ChildText("reason", Ns.MucUser), Is.EqualTo("closing time"));
        Assert.That((await Cli("room", "list")).Output.Trim(), Is.Empty);
        Assert.That((await Cli("room", "destroy", room)).Output, Does.Contain($"{room} does not exist"));
    }

    [Test]
    public async Task User_del_with_the_server_stopped_removes_the_accounts_data_too()
    {
        Assert.That((await Cli("user", "add", "alice", "alice-password")).ExitCode, Is.EqualTo(0));
        await using (var server = await StartServer())
        {
            await using var alice = await TestClient.ConnectAsync(Endpoint, "alice", "alice-password", "pc");
            var set = await alice.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>");
            Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());
            await alice.CloseAsync();
            Assert.That(await server.TerminateAsync(), Is.EqualTo(0));
        }
        var del = await Cli("user", "del", "alice");
        Assert.That(del.ExitCode, Is.EqualTo(0), del.Output);
        Assert.That((await Cli("user", "add", "alice", "new-alice-password")).ExitCode, Is.EqualTo(0));
        await using var restarted = await StartServer();
        await using var again = await TestClient.ConnectAsync(Endpoint, "alice", "new-alice-password", "pc");
        var roster = await again.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(roster.Child("query", Ns.Roster)?.Elements().ToList(), Is.Empty, "a new account with the same name starts empty: " + roster);
    }

    [Test]
    public async Task With_the_server_stopped_user_commands_open_the_store_and_session_commands_say_the_server_is_not_running()
    {
        Assert.That((await Cli("user", "add", "carol", "carol-password")).ExitCode, Is.EqualTo(0));
        var sessions = await Cli("session", "list");
        Assert.That(sessions.ExitCode, Is.EqualTo(1));
        Assert.That(sessions.Output, Does.Contain("session list needs the running server, and it is not running"));
        var stats = await Cli("stats");
        Assert.That(Lines(stats.Output), Does.Contain("accounts 1").And.Some.StartsWith("server not running"));
        Assert.That(File.Exists(Path.Combine(DataDir, "xmppd.pid")), Is.False, "the CLI let go of the folder");
    }

    [Test]
    public async Task Backup_while_clients_write_holds_everything_acknowledged_before_it_began_and_a_server_opens_it()
    {
        foreach (var u in new[] { "alice", "bob" })
            Assert.That((await Cli("user", "add", u, u + "-password")).ExitCode, Is.EqualTo(0));
        var backupDir = Path.Combine(_dir, "backup");
        int confirmedBefore, sent;
        List<string> registeredBefore;
        await using (var server = await StartServer())
        {
            var alice = await TestClient.ConnectAsync(Endpoint, "alice", "alice-password", "pc");
            await using var _ = alice;
            int confirmed = 0, sentCount = 0;
            var registered = new List<string>();
            using var done = new CancellationTokenSource();
            // Messages to offline bob go to the offline spool (an archive log); an IQ answered after them means they
            // are durable (the session's queued writes are waited for). Accounts go to LiteDB.
            var sending = Task.Run(async () =>
            {
                while (!done.IsCancellationRequested && sentCount < 600)
                {
                    for (int i = 0; i < 5; i++)
                    {
                        var n = Interlocked.Increment(ref sentCount);
                        await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{n}'><body>{n}</body></message>");
                    }
                    await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
                    Volatile.Write(ref confirmed, Volatile.Read(ref sentCount));
                    await Task.Delay(10);
                }
            });
            var registering = Task.Run(async () =>
            {
                for (int i = 0; !done.IsCancellationRequested && i < 40; i++)
                    if (await RegisterInBandAsync($"reg{i}", $"reg{i}-password"))
                        lock (registered) registered.Add($"reg{i}");
            });
            await Wait.UntilAsync(() => Volatile.Read(ref confirmed) >= 50 && registered.Count >= 3, TimeSpan.FromSeconds(20));
            confirmedBefore = Volatile.Read(ref confirmed);
            lock (registered) registeredBefore = [.. registered];
            var backup = await Cli("backup", backupDir);
            done.Cancel();
            await Task.WhenAll(sending, registering);
            sent = sentCount;
            Assert.That(backup.ExitCode, Is.EqualTo(0), backup.Output);
            Assert.That(backup.Output, Does.Contain($"backed up {DataDir} to {backupDir}"));
            Assert.That(confirmedBefore, Is.GreaterThanOrEqualTo(50));
            Assert.That(await server.TerminateAsync(), Is.EqualTo(0));
        }

        // A server on the copy, as after a restore.
        Assert.That(File.Exists(Path.Combine(backupDir, "xmppd.pid")) || File.Exists(Path.Combine(backupDir, ".lock")), Is.False, "the lock is not copied");
        var args = Args().ToArray();
        args[Array.IndexOf(args, "--data-dir") + 1] = backupDir;
        await using var restored = await ServerProcess.StartAsync(_dir, _c2s, args);
        var list = await ServerProcess.RunAsync(_dir, ["user", "list", .. args]);
        Assert.That(Lines(list.Output), Is.SupersetOf(registeredBefore.Concat(["alice", "bob"]).Select(u => u + "@localhost")));
        await using var bob = await TestClient.ConnectAsync(Endpoint, "bob", "bob-password", "phone");
        await bob.SendAsync("<presence/>");
        var ids = new List<int>();
        while (await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(2)) is { } m)
            ids.Add(int.Parse(m.Attr("id")![1..]));
        Assert.That(ids.Count, Is.GreaterThanOrEqualTo(confirmedBefore), $"confirmed before the backup {confirmedBefore}, sent {sent}");
        Assert.That(ids, Is.EqualTo(Enumerable.Range(1, ids.Count)), "a gap-free prefix, in order, no duplicates");
    }

    [Test]
    public async Task A_cli_write_on_a_folder_another_process_holds_is_refused_with_a_clear_line()
    {
        // This test process holds the folder, as a server that hangs before its socket answers would.
        using (DataDirLock.Acquire(DataDir))
        {
            var r = await Cli("user", "add", "dave", "dave-password");
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Output, Does.Contain($"the data folder {DataDir} is in use by PID {Environment.ProcessId}, and nothing answers on {DataDir}/admin.sock"));
        }
        var list = await Cli("user", "list");
        Assert.That(list.Output.Trim(), Is.Empty, "the refused command wrote nothing");
    }

    [Test]
    public async Task The_socket_answers_a_malformed_or_oversized_request_with_an_error_and_stays_up()
    {
        await using var server = await TestServer.StartAsync();
        var path = Path.Combine(server.DataDir, AdminSocket.FileName);
        Assert.That(await RawRequestAsync(path, "this is not json\n"), Does.Contain("\"exit\":1").And.Contain("not valid JSON"));
        Assert.That(await RawRequestAsync(path, "{\"args\":[\"cert\",\"generate\",\"x\"]}\n"), Does.Contain("names no admin command"));
        Assert.That(await RawRequestAsync(path, new string('x', AdminSocket.MaxRequestBytes + 10)), Does.Contain("at most"));
        var reply = await AdminSocket.TrySendAsync(path, ["stats"], TimeSpan.FromSeconds(10));
        Assert.That(reply!.Exit, Is.EqualTo(0));
        Assert.That(reply.Output, Does.Contain("connections 0"));
    }

    private static async Task<string> RawRequestAsync(string path, string request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(request));
        using var reader = new StreamReader(stream);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await reader.ReadLineAsync(cts.Token) ?? "";
    }
}
