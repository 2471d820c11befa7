using System.Diagnostics;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Issue 18, the latency tail: xmppd runs socket completions inline on the runtime's socket engine threads
/// (Hosting/InlineSocketCompletions.cs), and work that may block leaves those threads first (Xmpp.Storage.BlockingWork).
[TestFixture]
[Category("Performance")]
public sealed class InlineSocketCompletionsTests
{
    [Test]
    public async Task Blocking_work_started_on_a_thread_the_pool_does_not_own_runs_on_the_pool_and_on_a_pool_thread_runs_in_place()
    {
        (bool OnPool, int Thread) fromDedicated = default;
        var dedicated = new Thread(() =>
        {
            int caller = Environment.CurrentManagedThreadId;
            var work = BlockingWork.Run(0, _ => (Thread.CurrentThread.IsThreadPoolThread, Environment.CurrentManagedThreadId));
            fromDedicated = work.AsTask().GetAwaiter().GetResult();
            Assert.That(fromDedicated.Thread, Is.Not.EqualTo(caller));
        });
        dedicated.Start();
        Assert.That(dedicated.Join(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(fromDedicated.OnPool, Is.True, "work from a socket-engine-like thread must run on the pool");

        var (caller, ran, completed) = await Task.Run(() =>
        {
            int id = Environment.CurrentManagedThreadId;
            var work = BlockingWork.Run(0, _ => Environment.CurrentManagedThreadId);
            return (id, work.Result, work.IsCompleted);
        });
        Assert.That(completed, Is.True, "on a pool thread the work runs synchronously");
        Assert.That(ran, Is.EqualTo(caller));

        int after = -1;
        var hop = new Thread(() =>
        {
            async Task Hop() { await BlockingWork.ToPool(); after = Thread.CurrentThread.IsThreadPoolThread ? 1 : 0; }
            Hop().GetAwaiter().GetResult();
        });
        hop.Start();
        Assert.That(hop.Join(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(after, Is.EqualTo(1), "ToPool continues on a pool thread");
    }

    [Test]
    public async Task The_server_runs_socket_completions_on_the_pool_by_default_and_inline_when_the_operator_asks_and_says_which()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmppd-inline-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var (value, expected) in new[] { ((string?)null, "Socket completions run on the thread pool"), ("1", "Socket completions run inline on") })
            {
                int c2s = TestServer.FreePort(), tls = TestServer.FreePort();
                string[] args = [.. ServerProcess.LoopbackArgs(c2s, tls, Path.Combine(dir, "data" + value), Path.Combine(dir, "certs")), "--log-level", "Information"];
                var environment = new Dictionary<string, string>();
                if (value is not null) environment["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = value;
                await using var server = await ServerProcess.StartAsync(dir, c2s, environment, args);
                var deadline = Stopwatch.StartNew();
                while (!server.Output.Contains("Socket completions run") && deadline.Elapsed < TimeSpan.FromSeconds(10))
                    await Task.Delay(50);
                Assert.That(server.Output, Does.Contain(expected));
                Assert.That(server.Output, Does.Not.Contain("does not honour"));
                await server.TerminateAsync();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // The key derivation of a password change (PBKDF2 at Auth:ScramIterations, made ~1 s here) runs on a pool thread:
    // on a socket engine thread it would stall every connection that thread serves (half of them on two cores).
    [Test]
    public async Task Other_clients_keep_being_answered_while_a_password_change_derives_its_keys()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmppd-inline-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            int c2s = TestServer.FreePort(), tls = TestServer.FreePort();
            string[] args = ServerProcess.LoopbackArgs(c2s, tls, Path.Combine(dir, "data"), Path.Combine(dir, "certs"));
            var endpoint = new ServerEndpoint("127.0.0.1", c2s, tls);
            string[] users = ["changer", "u1", "u2", "u3", "u4", "u5", "u6"];
            await using (var setup = await ServerProcess.StartAsync(dir, c2s, args))
            {
                foreach (var u in users)
                    Assert.That((await ServerProcess.RunAsync(dir, [.. new[] { "user", "add", u + "@localhost", u + "-password" }, .. args])).ExitCode, Is.Zero);
                await setup.TerminateAsync();
            }
            var slow = new Dictionary<string, string> { ["Xmpp__Auth__ScramIterations"] = "400000", ["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "1" };
            await using var server = await ServerProcess.StartAsync(dir, c2s, slow, args);
            var clients = new Dictionary<string, TestClient>();
            try
            {
                // The changer's connection first, then six others that ping the server in turn: the server's sockets go
                // to its engines in turn, so some of them share the changer's engine.
                foreach (var u in users)
                    clients[u] = await TestClient.ConnectAsync(endpoint, u, u + "-password", "pc", sendPresence: true);
                var change = clients["changer"].IqAsync("<iq type='set'><query xmlns='jabber:iq:register'><username>changer</username>" +
                    "<password>a-new-password</password></query></iq>", TimeSpan.FromSeconds(60));
                var changeTook = Stopwatch.StartNew();
                double worst = 0;
                int rounds = 0;
                while (!change.IsCompleted && rounds < 400)
                {
                    rounds++;
                    foreach (var u in users.Skip(1))
                    {
                        var sent = Stopwatch.StartNew();
                        var pong = await clients[u].IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", TimeSpan.FromSeconds(30));
                        Assert.That(pong.Attr("type"), Is.EqualTo("result"));
                        worst = Math.Max(worst, sent.Elapsed.TotalMilliseconds);
                    }
                }
                var reply = await change;
                Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
                Assert.That(changeTook.Elapsed, Is.GreaterThan(TimeSpan.FromMilliseconds(300)), "the key derivation must take long enough to show a stall");
                Assert.That(rounds, Is.GreaterThan(3), $"worst ping {worst:F0} ms, change {changeTook.Elapsed.TotalMilliseconds:F0} ms");
                Assert.That(worst, Is.LessThan(changeTook.Elapsed.TotalMilliseconds / 2),
                    $"a ping took {worst:F0} ms while the password change took {changeTook.Elapsed.TotalMilliseconds:F0} ms ({rounds} rounds)");
            }
            finally
            {
                foreach (var c in clients.Values) await c.DisposeAsync();
                await server.TerminateAsync();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
