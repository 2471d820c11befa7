using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Issue 20, "reports kept for the admins and listed by the admin CLI": `xmppd report list|clear` on the real binary,
/// through the running server's admin socket and on a stopped server's store.
[TestFixture]
[Category("Abuse")]
public sealed class AbuseReportCliTests
{
    [Test]
    public async Task Report_list_shows_a_filed_report_with_its_message_on_a_running_and_a_stopped_server_and_clear_removes_it()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmppd-report-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            int c2s = TestServer.FreePort(), tls = TestServer.FreePort();
            string[] args =
            ServerProcess.LoopbackArgs(c2s, tls, Path.Combine(dir, "data"), Path.Combine(dir, "certs"));
            var endpoint = new ServerEndpoint("127.0.0.1", c2s, tls);
            Task<(int ExitCode, string Output)> Cli(params string[] words) => ServerProcess.RunAsync(dir, [.. words, .. args]);

            await using (var server = await ServerProcess.StartAsync(dir, c2s, args))
            {
                foreach (var u in new[] { "juliet", "spammer" })
                    Assert.That((await Cli("user", "add", u + "@localhost", u + "-pw")).ExitCode, Is.Zero);
                Assert.That((await Cli("report", "list")).Output, Does.Contain("0 reports"));

                await using var juliet = await TestClient.ConnectAsync(endpoint, "juliet", "juliet-pw", "pc", sendPresence: true);
                await using (var spammer = await TestClient.ConnectAsync(endpoint, "spammer", "spammer-pw", "pc", sendPresence: true))
                    await spammer.SendAsync("<message to='juliet@localhost' type='chat' id='spam1'><body>Cheap watches!</body></message>");
                var spam = await juliet.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "spam1");
                var stanzaId = spam.Child("stanza-id", Ns.StanzaId)!.Attr("id")!;
                // XEP-0377 §3: the report rides on the block.
                var reply = await juliet.IqAsync("<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='spammer@localhost'>" +
                    "<report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'>" +
                    $"<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@localhost' id='{stanzaId}'/><text>Sells\nwatches</text></report></item></block></iq>");
                Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());

                var running = await Cli("report", "list");
                Assert.That(running.ExitCode, Is.Zero, running.Output);
                Assert.That(running.Output, Does.Contain($"juliet@localhost reported spammer@localhost for urn:xmpp:reporting:spam (stanza-ids {stanzaId})"));
                Assert.That(running.Output, Does.Contain("  text: Sells watches"), "the text on one line");
                Assert.That(running.Output, Does.Contain("  message: ").And.Contain("Cheap watches!"));
                Assert.That(running.Output, Does.Contain("1 report\n").Or.Contain("1 report\r\n"));
                Assert.That(await server.TerminateAsync(), Is.Zero, server.Output);
            }

            // The stopped server's store: the report was kept, and clear empties it for the next start.
            Assert.That((await Cli("report", "list")).Output, Does.Contain("juliet@localhost reported spammer@localhost"));
            var clear = await Cli("report", "clear");
            Assert.That(clear.ExitCode, Is.Zero, clear.Output);
            Assert.That(clear.Output, Does.Contain("removed 1 report"));
            await using var again = await ServerProcess.StartAsync(dir, c2s, args);
            Assert.That((await Cli("report", "list")).Output, Does.Contain("0 reports").And.Not.Contain("reported"));
            var wrong = await Cli("report", "delete");
            Assert.That(wrong.ExitCode, Is.Not.Zero);
            Assert.That(wrong.Output, Does.Contain("usage is 'report list' or 'report clear'"));
            await again.TerminateAsync();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
