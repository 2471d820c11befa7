using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Links.S2s;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The server-wide block list changed while the server runs: `xmppd block` through the real binary's admin socket and
/// on a stopped server's store, and the admins' ad-hoc command; every change takes effect with the next stanza, links
/// to a newly blocked domain close, and the added entries outlive a restart.
[TestFixture]
[Category("Abuse")]
public sealed class BlockListAdminTests
{
    private const string Commands = "http://jabber.org/protocol/commands";

    private static string? Condition(Element stanza) =>
        stanza.Child("error", Ns.Client)?.Elements().FirstOrDefault(e => e.Namespace == Ns.StanzaErrors && e.Name != "text")?.Name;

    /// mallory sends alice a message: true when it arrived, false when mallory got the policy's not-allowed and alice nothing.
    private static async Task<bool> DeliveredAsync(TestClient mallory, TestClient alice, string id)
    {
        await mallory.SendAsync($"<message to='alice@localhost' type='chat' id='{id}'><body>hello</body></message>");
        var got = await alice.TryReceiveAsync(e => e.Attr("id") == id, TimeSpan.FromSeconds(2));
        if (got is not null) return true;
        var refused = await mallory.ReceiveAsync(e => e.Attr("id") == id);
        Assert.That(Condition(refused), Is.EqualTo(StanzaErrors.NotAllowed), refused.ToString());
        return false;
    }

    [Test]
    public async Task Block_add_from_the_cli_refuses_at_once_and_the_entry_survives_a_restart_and_del_on_the_store()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmppd-block-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            int c2s = TestServer.FreePort(), tls = TestServer.FreePort();
            string[] args =
            ServerProcess.LoopbackArgs(c2s, tls, Path.Combine(dir, "data"), Path.Combine(dir, "certs"));
            var endpoint = new ServerEndpoint("127.0.0.1", c2s, tls);
            Task<(int ExitCode, string Output)> Cli(params string[] words) => ServerProcess.RunAsync(dir, [.. words, .. args]);
            Task<TestClient> Login(string user) => TestClient.ConnectAsync(endpoint, user, user + "-pw", "pc", sendPresence: true);

            await using (var server = await ServerProcess.StartAsync(dir, c2s, args))
            {
                foreach (var u in new[] { "alice", "mallory" })
                    Assert.That((await Cli("user", "add", u + "@localhost", u + "-pw")).ExitCode, Is.Zero);
                await using var alice = await Login("alice");
                await using var mallory = await Login("mallory");
                Assert.That(await DeliveredAsync(mallory, alice, "before"), Is.True);

                var add = await Cli("block", "add", "mallory@localhost");
                Assert.That(add.ExitCode, Is.Zero, add.Output);
                Assert.That(add.Output, Does.Contain("blocked mallory@localhost"));
                // The very next stanza meets the new entry, in both directions.
                Assert.That(await DeliveredAsync(mallory, alice, "after"), Is.False);
                await alice.SendAsync("<message to='mallory@localhost/pc' type='chat' id='back'><body>hi</body></message>");
                Assert.That(Condition(await alice.ReceiveAsync(e => e.Attr("id") == "back")), Is.EqualTo(StanzaErrors.NotAllowed));

                Assert.That((await Cli("block", "add", "spam.example")).ExitCode, Is.Zero);
                var again = await Cli("block", "add", "mallory@localhost");
                Assert.That(again.ExitCode, Is.EqualTo(1));
                Assert.That(again.Output, Does.Contain("already"));
                var full = await Cli("block", "add", "mallory@localhost/pc");
                Assert.That(full.ExitCode, Is.EqualTo(1));
                Assert.That(full.Output, Does.Contain("has a resource"));
                var list = await Cli("block", "list");
                Assert.That(list.Output, Does.Contain("mallory@localhost (stored)").And.Contain("spam.example (stored)"), list.Output);
            }

            await using (var server = await ServerProcess.StartAsync(dir, c2s, args))
            {
                await using var alice = await Login("alice");
                await using var mallory = await Login("mallory");
                Assert.That(await DeliveredAsync(mallory, alice, "restarted"), Is.False, "the entry outlived the restart");
            }

            // Stopped: the CLI changes the store itself, and the next start reads it.
            var del = await Cli("block", "del", "mallory@localhost");
            Assert.That(del.ExitCode, Is.Zero, del.Output);
            Assert.That((await Cli("block", "list")).Output, Does.Not.Contain("mallory@localhost").And.Contain("spam.example (stored)"));
            await using (var server = await ServerProcess.StartAsync(dir, c2s, args))
            {
                await using var alice = await Login("alice");
                await using var mallory = await Login("mallory");
                Assert.That(await DeliveredAsync(mallory, alice, "unblocked"), Is.True);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Task<Element> Execute(TestClient c, string? sessionId = null, string? form = null) =>
        c.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Commands}' node='{BlockListCommandModule.Node}'"
                  + (sessionId is null ? "" : $" sessionid='{sessionId}' action='complete'") + ">" + (form ?? "") + "</command></iq>");

    /// The command's two stages: the form (returned for its fields), then the submitted entries; returns the note.
    private static async Task<(DataFormView Form, Element Done)> EditAsync(TestClient admin, params string[] entries)
    {
        var first = await Execute(admin);
        Assert.That(first.Attr("type"), Is.EqualTo("result"), first.ToString());
        var command = first.Child("command", Commands)!;
        var form = new DataFormView(command.Child("x", Ns.DataForms)!);
        var submit = "<x xmlns='jabber:x:data' type='submit'><field var='entries'>"
            + string.Concat(entries.Select(e => $"<value>{e}</value>")) + "</field></x>";
        var done = await Execute(admin, command.Attr("sessionid"), submit);
        Assert.That(done.Child("command", Commands)?.Attr("status"), Is.EqualTo("completed"), done.ToString());
        return (form, done.Child("command", Commands)!);
    }

    private sealed record DataFormView(Element X)
    {
        public IReadOnlyList<string> Values(string var) =>
            X.Elements("field", Ns.DataForms).FirstOrDefault(f => f.Attr("var") == var)?.Elements("value", Ns.DataForms).Select(v => v.Text ?? "").ToList() ?? [];
    }

    private static string Note(Element command) => command.Child("note", Commands)?.Text ?? "";

    [Test]
    public async Task The_admin_command_edits_the_list_at_once_a_user_is_forbidden_and_the_entries_survive_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-test-" + Guid.NewGuid().ToString("N"));
        void Configure(Dictionary<string, string?> o)
        {
            o["Xmpp:Admins:0"] = "admin@localhost";
            o["Xmpp:Blocked:Domains:0"] = "configured.example";
        }
        try
        {
            await using (var server = await TestServer.StartAsync(dir, Configure))
            {
                foreach (var u in new[] { "admin", "alice", "mallory" }) await server.AddUserAsync(u, u + "-pw");
                await using var admin = await TestClient.ConnectAsync(server, "admin", "admin-pw", "pc", sendPresence: true);
                await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc", sendPresence: true);
                await using var mallory = await TestClient.ConnectAsync(server, "mallory", "mallory-pw", "pc", sendPresence: true);

                // A user neither sees nor runs it (XEP-0050 §4.7: forbidden).
                var refused = await Execute(mallory);
                Assert.That(Condition(refused), Is.EqualTo(StanzaErrors.Forbidden), refused.ToString());
                var items = await mallory.IqAsync($"<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
                Assert.That(items.ToString(), Does.Not.Contain(BlockListCommandModule.Node));

                Assert.That(await DeliveredAsync(mallory, alice, "before"), Is.True);
                var (form, done) = await EditAsync(admin, "mallory@localhost", "Spam.Example");
                Assert.That(form.Values("configured"), Is.EqualTo(new[] { "configured.example" }));
                Assert.That(form.Values("entries"), Is.Empty);
                Assert.That(Note(done), Does.StartWith("2 entries added, 0 removed"), done.ToString());
                Assert.That(await DeliveredAsync(mallory, alice, "after"), Is.False);

                // One bad line changes nothing, and says which.
                var (listed, bad) = await EditAsync(admin, "mallory@localhost", "spam.example", "x@localhost/res");
                Assert.That(listed.Values("entries"), Is.EqualTo(new[] { "mallory@localhost", "spam.example" }));
                Assert.That(bad.Child("note", Commands)?.Attr("type"), Is.EqualTo("error"));
                Assert.That(Note(bad), Does.Contain("x@localhost/res"));
            }

            await using (var server = await TestServer.StartAsync(dir, Configure))
            {
                await using var admin = await TestClient.ConnectAsync(server, "admin", "admin-pw", "pc", sendPresence: true);
                await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc", sendPresence: true);
                await using var mallory = await TestClient.ConnectAsync(server, "mallory", "mallory-pw", "pc", sendPresence: true);
                Assert.That(await DeliveredAsync(mallory, alice, "restarted"), Is.False, "the entry outlived the restart");
                // Taking mallory out of the field unblocks them; the configured domain stays whatever is submitted.
                var (form, done) = await EditAsync(admin, "spam.example");
                Assert.That(form.Values("entries"), Is.EqualTo(new[] { "mallory@localhost", "spam.example" }));
                Assert.That(Note(done), Does.StartWith("0 entries added, 1 removed"), done.ToString());
                Assert.That(await DeliveredAsync(mallory, alice, "unblocked"), Is.True);
                await alice.SendAsync("<message to='x@configured.example' type='chat' id='cfg'><body>hi</body></message>");
                Assert.That(Condition(await alice.ReceiveAsync(e => e.Attr("id") == "cfg")), Is.EqualTo(StanzaErrors.NotAllowed));
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task Blocking_a_federated_domain_closes_its_links_and_refuses_its_stanzas()
    {
        await using var pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            if (domain == "a.test") o["Xmpp:Admins:0"] = "admin@a.test";
        });
        await pair.A.AddUserAsync("admin", "admin-pw");
        await pair.A.AddUserAsync("alice", "alice-pw");
        await pair.B.AddUserAsync("bob", "bob-pw");
        await using var admin = await TestClient.ConnectAsync(pair.A, "admin", "admin-pw", "pc", sendPresence: true);
        await using var alice = await TestClient.ConnectAsync(pair.A, "alice", "alice-pw", "pc", sendPresence: true);
        await using var bob = await TestClient.ConnectAsync(pair.B, "bob", "bob-pw", "pc", sendPresence: true);
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='m1'><body>hi</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "m1", TimeSpan.FromSeconds(20));
        await bob.SendAsync("<message to='alice@a.test' type='chat' id='m2'><body>hi</body></message>");
        await alice.ReceiveAsync(e => e.Attr("id") == "m2", TimeSpan.FromSeconds(20));
        Assert.That(S2sPair.Links(pair.A).Where(l => l.Remote == "b.test"), Is.Not.Empty);

        var first = await admin.IqAsync($"<iq type='set' to='a.test'><command xmlns='{Commands}' node='{BlockListCommandModule.Node}'/></iq>");
        var sid = first.Child("command", Commands)!.Attr("sessionid");
        var done = await admin.IqAsync($"<iq type='set' to='a.test'><command xmlns='{Commands}' node='{BlockListCommandModule.Node}' sessionid='{sid}' action='complete'>"
            + "<x xmlns='jabber:x:data' type='submit'><field var='entries'><value>b.test</value></field></x></command></iq>");
        Assert.That(done.Child("command", Commands)?.Attr("status"), Is.EqualTo("completed"), done.ToString());

        Assert.That(await Wait.UntilAsync(() => !S2sPair.Links(pair.A).Any(l => l.Remote == "b.test"), TimeSpan.FromSeconds(5)), Is.True,
            string.Join("; ", S2sPair.Links(pair.A)));
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='m3'><body>hi</body></message>");
        Assert.That(Condition(await alice.ReceiveAsync(e => e.Attr("id") == "m3")), Is.EqualTo(StanzaErrors.NotAllowed));
        await bob.SendAsync("<message to='alice@a.test' type='chat' id='m4'><body>hi</body></message>");
        Assert.That(await alice.TryReceiveAsync(e => e.Attr("id") == "m4", TimeSpan.FromSeconds(2)), Is.Null);
        Assert.That(await bob.TryReceiveAsync(e => e.Attr("id") == "m3", TimeSpan.FromMilliseconds(300)), Is.Null);
    }
}
