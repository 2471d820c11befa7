using System.Text.RegularExpressions;
using Xmpp.Protocol;
using Xmpp.Storage;
using Xmpp.Tests.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// xmppd invite create, run as a process like an operator would, and the invitation it prints then used against the
/// server started on the same data folder.
[TestFixture]
public sealed class InviteCliTests
{
    private string _dir = null!;

    [SetUp]
    public void MakeDir()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-invite-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    // The commands see the data of the servers these tests start on the same folder (the same database when the
    // tests run on PostgreSQL).
    private async Task<(int ExitCode, string Output)> Run(params string[] args) =>
        await ServerProcess.RunAsync(_dir, await TestServer.StorageEnvironmentForAsync(_dir),
            [.. args, "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"), "--http-port", "5281"]);

    [Test]
    public async Task Invite_create_prints_the_page_and_the_uri_and_the_token_registers_accounts_subscribed_to_the_inviter()
    {
        Assert.That((await Run("user", "add", "alice", "alice-password")).ExitCode, Is.EqualTo(0));
        var created = await Run("invite", "create", "--inviter", "alice", "--reusable", "2", "--expires", "2d");
        Assert.That(created.ExitCode, Is.EqualTo(0), created.Output);
        var page = Regex.Match(created.Output, @"page: https://localhost:5281/invite/([A-Za-z0-9_-]{24})\n");
        var uri = Regex.Match(created.Output, @"uri:  xmpp:alice@localhost\?roster;preauth=([A-Za-z0-9_-]{24});ibr=y\n");
        Assert.That(page.Success && uri.Success, Is.True, created.Output);
        Assert.That(uri.Groups[1].Value, Is.EqualTo(page.Groups[1].Value));
        Assert.That(created.Output, Does.Contain("for 2 accounts"));
        var token = uri.Groups[1].Value;

        // The server on the same data folder takes the token before in-band registration (XEP-0445).
        await using var server = await TestServer.StartAsync(dataDir: _dir);
        foreach (var user in new[] { "juliet", "romeo" })
        {
            await using var c = await TestClient.OpenAsync(server);
            await c.SendRawAsync($"<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>");
            Assert.That((await c.ReadElementAsync()).Attr("type"), Is.EqualTo("result"));
            await c.SendRawAsync($"<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>{user}</username><password>{user}-password</password></query></iq>");
            var reply = await c.ReadElementAsync();
            Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
        }
        var alice = await InvitesModuleTests.Roster(server, "alice");
        Assert.That(alice["juliet@localhost"], Is.EqualTo(Subscription.Both));
        Assert.That(alice["romeo@localhost"], Is.EqualTo(Subscription.Both));
        await using var third = await TestClient.OpenAsync(server);
        await third.SendRawAsync($"<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>");
        Assert.That((await third.ReadElementAsync()).Child("error", Ns.Client), Is.Not.Null, "two uses only");
    }

    /// README's walk-through: the server runs, the operator creates an invitation (through the admin socket), the
    /// friend signs up on the printed page, logs in, and finds the inviter among the contacts.
    [Test]
    [NonParallelizable]
    public async Task With_the_server_running_invite_create_goes_through_it_and_the_printed_page_signs_up_a_friend_subscribed_to_the_inviter()
    {
        int c2s = TestServer.FreePort(), tls = TestServer.FreePort(), https = TestServer.FreePort();
        string[] args =
        [
            "--domain", "localhost", "--c2s-port", c2s.ToString(), "--c2s-tls-port", tls.ToString(), "--http-port", https.ToString(),
            "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"), "--listen", "127.0.0.1", "--log-level", "Warning",
        ];
        await using var server = await ServerProcess.StartAsync(_dir, c2s, args);
        Assert.That((await ServerProcess.RunAsync(_dir, ["user", "add", "alice", "alice-password", .. args])).ExitCode, Is.EqualTo(0));
        var created = await ServerProcess.RunAsync(_dir, ["invite", "create", "--inviter", "alice@localhost", .. args]);
        Assert.That(created.ExitCode, Is.EqualTo(0), created.Output);
        var page = Regex.Match(created.Output, $@"page: (https://localhost:{https}/invite/[A-Za-z0-9_-]{{24}})
");
        Assert.That(page.Success, Is.True, created.Output);

        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } });
        var html = await http.GetStringAsync(page.Groups[1].Value);
        var formToken = Regex.Match(html, "name=\"form-token\" value=\"([0-9a-f]{32})\"").Groups[1].Value;
        using var post = await http.PostAsync(page.Groups[1].Value, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["form-token"] = formToken, ["username"] = "juliet", ["password"] = "juliet-password", ["password2"] = "juliet-password",
        }));
        Assert.That(post.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.OK), await post.Content.ReadAsStringAsync());

        await using var juliet = await TestClient.ConnectAsync(new ServerEndpoint("127.0.0.1", c2s, tls), "juliet", "juliet-password", "phone");
        var roster = await juliet.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(X.Matches(roster, "<iq type='result'><query xmlns='jabber:iq:roster'><item jid='alice@localhost' subscription='both'/></query></iq>"),
            roster.ToString());
    }

    [Test]
    public async Task Invite_create_without_an_inviter_registers_at_the_domain_and_mistakes_are_reported()
    {
        var plain = await Run("invite", "create");
        Assert.That(plain.ExitCode, Is.EqualTo(0), plain.Output);
        Assert.That(plain.Output, Does.Match(@"uri:  xmpp:localhost\?register;preauth=[A-Za-z0-9_-]{24}\n"));
        Assert.That(plain.Output, Does.Contain("for 1 account"));

        var unknown = await Run("invite", "create", "--inviter", "nobody");
        Assert.That(unknown.ExitCode, Is.EqualTo(1));
        Assert.That(unknown.Output, Does.Contain("nobody@localhost does not exist"));
        Assert.That((await Run("invite", "create", "--reusable", "0")).ExitCode, Is.EqualTo(1));
        Assert.That((await Run("invite", "create", "--expires", "soon")).ExitCode, Is.EqualTo(1));
    }

    /// Point 3 of issue 19: an invitation made with --admin makes the account it creates an administrator, stored
    /// (not in Xmpp:Admins), so it may run XEP-0133 commands, also after a restart; an account from an ordinary
    /// invitation gets forbidden.
    [Test]
    public async Task An_admin_invitation_makes_an_administrator_who_may_run_service_administration_and_an_ordinary_one_does_not()
    {
        var admin = await Run("invite", "create", "--admin");
        Assert.That(admin.ExitCode, Is.EqualTo(0), admin.Output);
        Assert.That(admin.Output, Does.Contain("each made an administrator"));
        var plain = await Run("invite", "create");
        Assert.That(plain.ExitCode, Is.EqualTo(0), plain.Output);
        string Token(string output) => Regex.Match(output, @"preauth=([A-Za-z0-9_-]{24})").Groups[1].Value;

        const string count = "<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#get-online-users-num' action='execute'/></iq>";
        await using (var server = await TestServer.StartAsync(dataDir: _dir))
        {
            foreach (var (user, token) in new[] { ("root", Token(admin.Output)), ("guest", Token(plain.Output)) })
            {
                await using var c = await TestClient.OpenAsync(server);
                await c.SendRawAsync($"<iq type='set' id='pa'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>");
                Assert.That((await c.ReadElementAsync()).Attr("type"), Is.EqualTo("result"));
                await c.SendRawAsync($"<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>{user}</username><password>{user}-password</password></query></iq>");
                Assert.That((await c.ReadElementAsync()).Attr("type"), Is.EqualTo("result"));
            }
            await using var root = await TestClient.ConnectAsync(server, "root", "root-password", "pc");
            var done = await root.IqAsync(count);
            Assert.That(done.Child("command", "http://jabber.org/protocol/commands")?.Attr("status"), Is.EqualTo("completed"), done.ToString());
            await using var guest = await TestClient.ConnectAsync(server, "guest", "guest-password", "pc");
            var refused = await guest.IqAsync(count);
            Assert.That(refused.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo("forbidden"), refused.ToString());
        }
        // Stored, not remembered: the next start still knows.
        await using (var server = await TestServer.StartAsync(dataDir: _dir))
        {
            await using var root = await TestClient.ConnectAsync(server, "root", "root-password", "pc");
            var done = await root.IqAsync(count);
            Assert.That(done.Child("command", "http://jabber.org/protocol/commands")?.Attr("status"), Is.EqualTo("completed"), done.ToString());
        }
        // The grant goes with the account, also when it is deleted on the stopped server's store: a new "root" is no admin.
        Assert.That((await Run("user", "del", "root")).ExitCode, Is.EqualTo(0));
        Assert.That((await Run("user", "add", "root", "another-password")).ExitCode, Is.EqualTo(0));
        await using (var server = await TestServer.StartAsync(dataDir: _dir))
        {
            await using var root = await TestClient.ConnectAsync(server, "root", "another-password", "pc");
            var refused = await root.IqAsync(count);
            Assert.That(refused.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo("forbidden"), refused.ToString());
        }
    }
}
