using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Disco;
using Xmpp.Server.Modules;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0050 ad-hoc commands with XEP-0133 service administration, announcements and the message of the day, and
/// XEP-0157 contact addresses, over real sockets. "admin" is the one administrator; "bob" and "carol" are users.
[TestFixture]
public sealed class AdHocModuleTests
{
    private const string Commands = "http://jabber.org/protocol/commands";
    private const string Admin = "http://jabber.org/protocol/admin#";

    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Admins:0"] = "Admin@localhost";
            configure?.Invoke(o);
        });
        foreach (var u in new[] { "admin", "bob", "carol" }) await s.AddUserAsync(u, u + "-pw");
        return s;
    }

    private static Task<TestClient> Login(TestServer s, string user, string resource = "pc") =>
        TestClient.ConnectAsync(s, user, user + "-pw", resource, sendPresence: true);

    private static Task<Element> Execute(TestClient c, string node, string? sessionId = null, string? action = null, string? form = null) =>
        c.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Commands}' node='{node}'"
                  + (sessionId is null ? "" : $" sessionid='{sessionId}'") + (action is null ? "" : $" action='{action}'")
                  + ">" + (form ?? "") + "</command></iq>");

    private static string Submit(params (string Var, string[] Values)[] fields) =>
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/admin</value></field>"
        + string.Concat(fields.Select(f => $"<field var='{f.Var}'>" + string.Concat(f.Values.Select(v => $"<value>{v}</value>")) + "</field>"))
        + "</x>";

    /// Runs a command with a form through both stages and returns the completed &lt;command/&gt;.
    private static async Task<Element> RunAsync(TestClient c, string name, params (string Var, string[] Values)[] fields)
    {
        var first = await Execute(c, Admin + name);
        Assert.That(first.Attr("type"), Is.EqualTo("result"), first.ToString());
        var command = first.Child("command", Commands)!;
        Assert.That(command.Attr("status"), Is.EqualTo("executing"));
        Assert.That(command.Child("x", Ns.DataForms)?.Attr("type"), Is.EqualTo("form"));
        var done = await Execute(c, Admin + name, command.Attr("sessionid"), "complete", Submit(fields));
        Assert.That(done.Attr("type"), Is.EqualTo("result"), done.ToString());
        Assert.That(done.Child("command", Commands)?.Attr("status"), Is.EqualTo("completed"), done.ToString());
        return done.Child("command", Commands)!;
    }

    /// The condition of the stream error that ends a logged-in client's stream.
    private static async Task<string?> StreamErrorAsync(TestClient c) =>
        (await c.ReceiveAsync(e => e.Is("error", Ns.Streams))).FirstElement?.Name;

    private static string? Note(Element command) => command.ChildText("note", Commands);

    [Test]
    public async Task An_admin_lists_the_commands_and_a_user_sees_only_the_users_and_may_run_no_admin_command()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        await using var bob = await Login(server, "bob");

        var info = await admin.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")), Does.Contain(Commands));

        var items = await admin.IqAsync($"<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        var nodes = items.Child("query", Ns.DiscoItems)!.Elements("item", Ns.DiscoItems).Select(i => i.Attr("node")).ToList();
        Assert.That(nodes, Is.SupersetOf(new[] { "add-user", "delete-user", "disable-user", "reenable-user", "end-user-session",
            "change-user-password", "get-user-roster", "get-user-lastlogin", "get-online-users-num", "get-online-users-list",
            "announce", "set-motd", "edit-motd", "delete-motd" }.Select(n => Admin + n)));

        var nodeInfo = await admin.IqAsync($"<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='{Admin}add-user'/></iq>");
        Assert.That(X.Matches(nodeInfo, $"<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='{Admin}add-user'>"
            + "<identity category='automation' type='command-node'/></query></iq>"), nodeInfo.ToString());

        var bobItems = await bob.IqAsync($"<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='{Commands}'/></iq>");
        var bobNodes = bobItems.Child("query", Ns.DiscoItems)!.Elements("item", Ns.DiscoItems).Select(i => i.Attr("node")!).ToList();
        Assert.That(bobNodes.Where(n => n.StartsWith(Admin)), Is.Empty, "a user sees no admin command");
        Assert.That(bobNodes, Does.Contain("urn:xmppd:message-requests#settings").And.Contain("urn:xmpp:invite#invite"), "but the users' own");
        var refused = await Execute(bob, Admin + "add-user");
        Assert.That(refused.Child("error", Ns.Client)?.Child("forbidden", Ns.StanzaErrors), Is.Not.Null, refused.ToString());
        var unknown = await Execute(admin, Admin + "no-such-command");
        Assert.That(unknown.Child("error", Ns.Client)?.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null, unknown.ToString());
    }

    [Test]
    public async Task An_admin_adds_a_user_who_then_logs_in_and_mismatched_passwords_add_nobody()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        var done = await RunAsync(admin, "add-user", ("accountjid", ["dave@localhost"]), ("password", ["dave-pw"]), ("password-verify", ["dave-pw"]));
        Assert.That(Note(done), Does.Contain("dave@localhost"));
        await using (var dave = await Login(server, "dave")) Assert.That(dave.Jid!.Bare.ToString(), Is.EqualTo("dave@localhost"));

        var mismatch = await RunAsync(admin, "add-user", ("accountjid", ["erin@localhost"]), ("password", ["a"]), ("password-verify", ["b"]));
        Assert.That(mismatch.Child("note", Commands)?.Attr("type"), Is.EqualTo("error"));
        var again = await RunAsync(admin, "add-user", ("accountjid", ["dave@localhost"]), ("password", ["x"]), ("password-verify", ["x"]));
        Assert.That(Note(again), Does.Contain("exists"));
        var foreign = await RunAsync(admin, "add-user", ("accountjid", ["frank@elsewhere.example"]), ("password", ["x"]), ("password-verify", ["x"]));
        Assert.That(foreign.Child("note", Commands)?.Attr("type"), Is.EqualTo("error"));
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("erin"), Is.Null);
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("frank"), Is.Null);
    }

    [Test]
    public async Task A_session_id_is_only_good_for_who_got_it_and_cancel_ends_it()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin", "pc");
        await using var admin2 = await Login(server, "admin", "phone");
        var first = (await Execute(admin, Admin + "add-user")).Child("command", Commands)!;
        var id = first.Attr("sessionid");
        var stolen = await Execute(admin2, Admin + "add-user", id, "complete",
            Submit(("accountjid", ["mallory@localhost"]), ("password", ["m"]), ("password-verify", ["m"])));
        Assert.That(stolen.Child("error", Ns.Client)?.Child("bad-sessionid", Commands), Is.Not.Null, stolen.ToString());
        var canceled = await Execute(admin, Admin + "add-user", id, "cancel");
        Assert.That(canceled.Child("command", Commands)?.Attr("status"), Is.EqualTo("canceled"));
        var late = await Execute(admin, Admin + "add-user", id, "complete",
            Submit(("accountjid", ["mallory@localhost"]), ("password", ["m"]), ("password-verify", ["m"])));
        Assert.That(late.Attr("type"), Is.EqualTo("error"));
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("mallory"), Is.Null);
        var noForm = await Execute(admin, Admin + "add-user", (await Execute(admin, Admin + "add-user")).Child("command", Commands)!.Attr("sessionid"), "complete");
        Assert.That(noForm.Child("error", Ns.Client)?.Child("bad-payload", Commands), Is.Not.Null, noForm.ToString());
    }

    [Test]
    public async Task Deleting_an_online_user_ends_its_session_and_removes_the_account()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        await using var bob = await Login(server, "bob");
        var done = await RunAsync(admin, "delete-user", ("accountjids", ["bob@localhost", "nobody@localhost"]));
        Assert.That(Note(done), Does.Contain("bob@localhost").And.Contain("nobody@localhost"));
        Assert.That(await StreamErrorAsync(bob), Is.EqualTo("not-authorized"));
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("bob"), Is.Null);
    }

    [Test]
    public async Task A_disabled_user_is_logged_out_and_refused_with_account_disabled_until_re_enabled()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        await using (var bob = await Login(server, "bob"))
        {
            await RunAsync(admin, "disable-user", ("accountjids", ["bob@localhost"]));
            Assert.That(await StreamErrorAsync(bob), Is.EqualTo("not-authorized"));
        }
        await using (var attempt = await TestClient.OpenAsync(server))
        {
            var failure = await attempt.TryAuthenticateAsync("bob", "bob-pw");
            Assert.That(failure.Child("account-disabled", Ns.Sasl), Is.Not.Null, failure.ToString());
        }
        // The right password on a disabled account is no guess: the brute-force back-off has not started.
        await RunAsync(admin, "reenable-user", ("accountjids", ["bob@localhost"]));
        await using var back = await Login(server, "bob");
        Assert.That(back.Jid, Is.Not.Null);
    }

    [Test]
    public async Task Ending_a_users_sessions_closes_them_and_a_full_jid_closes_one()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        await using var phone = await Login(server, "bob", "phone");
        await using var laptop = await Login(server, "bob", "laptop");
        var one = await RunAsync(admin, "end-user-session", ("accountjids", ["bob@localhost/phone"]));
        Assert.That(Note(one), Does.StartWith("1 session"));
        Assert.That(await StreamErrorAsync(phone), Is.Not.Null);
        Assert.That(await laptop.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"), Is.Not.Null, "the laptop stays");
        await RunAsync(admin, "end-user-session", ("accountjids", ["bob@localhost"]));
        Assert.That(await StreamErrorAsync(laptop), Is.Not.Null);
    }

    [Test]
    public async Task An_admin_changes_a_password_counts_and_lists_online_users_and_reads_a_roster_and_last_login()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        await using (var carol = await Login(server, "carol"))
            await carol.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bobby'><group>Friends</group></item></query></iq>");
        await using var bob = await Login(server, "bob");

        var count = await Execute(admin, Admin + "get-online-users-num");
        var num = DataForm.Parse(count.Child("command", Commands)!.Child("x", Ns.DataForms)!);
        Assert.That(num.Value("onlineusersnum"), Is.EqualTo("2"));
        var list = await Execute(admin, Admin + "get-online-users-list");
        Assert.That(DataForm.Parse(list.Child("command", Commands)!.Child("x", Ns.DataForms)!).Values("onlineuserjids"),
            Is.EqualTo(new[] { "admin@localhost", "bob@localhost" }));

        var roster = await RunAsync(admin, "get-user-roster", ("accountjids", ["carol@localhost"]));
        var item = roster.Child("x", Ns.DataForms)!.Child("query", Ns.Roster)!.Child("item", Ns.Roster)!;
        Assert.That(item.Attr("jid"), Is.EqualTo("bob@localhost"));
        Assert.That(item.Attr("name"), Is.EqualTo("Bobby"));
        Assert.That(item.ChildText("group", Ns.Roster), Is.EqualTo("Friends"));

        var last = await RunAsync(admin, "get-user-lastlogin", ("accountjids", ["carol@localhost"]));
        Assert.That(DateTimeProfile.TryParse(DataForm.Parse(last.Child("x", Ns.DataForms)!).Value("lastlogin"), out var when), Is.True);
        Assert.That(when, Is.EqualTo(DateTimeOffset.UtcNow).Within(TimeSpan.FromMinutes(1)));

        await RunAsync(admin, "change-user-password", ("accountjid", ["carol@localhost"]), ("password", ["new-secret"]));
        await using var attempt = await TestClient.OpenAsync(server);
        Assert.That((await attempt.TryAuthenticateAsync("carol", "carol-pw")).Child("not-authorized", Ns.Sasl), Is.Not.Null);
        await using var carol2 = await TestClient.ConnectAsync(server, "carol", "new-secret", "pc");
        Assert.That(carol2.Jid, Is.Not.Null);
    }

    [Test]
    public async Task Last_login_asked_right_after_a_logout_is_a_time_never_never()
    {
        // The session leaves the directory before its session-closed handlers record the logout; the command waits for
        // those handlers (ModuleRegistry.BeginEnding) rather than answer "never" in between. Asked on a second stream
        // while the first closes, many times, to meet that moment.
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        for (var i = 0; i < 20; i++)
        {
            // A new account each round: one that logged out before would answer its earlier logout.
            var user = "dave" + i;
            await server.AddUserAsync(user, user + "-pw");
            var client = await Login(server, user);
            var closing = client.DisposeAsync().AsTask();
            var last = await RunAsync(admin, "get-user-lastlogin", ("accountjids", [user + "@localhost"]));
            var value = DataForm.Parse(last.Child("x", Ns.DataForms)!).Value("lastlogin");
            Assert.That(DateTimeProfile.TryParse(value, out _), Is.True, $"round {i}: {value}");
            await closing;
        }
    }

    [Test]
    public async Task An_announcement_reaches_every_online_user_and_a_user_cannot_send_one()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        await using var bob = await Login(server, "bob");
        await using var carol = await Login(server, "carol");
        var done = await RunAsync(admin, "announce", ("subject", ["Maintenance"]), ("announcement", ["Down at 22:00", "for ten minutes"]));
        Assert.That(Note(done), Does.Contain("3"));
        foreach (var c in new[] { bob, carol })
        {
            var m = await c.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == "localhost");
            Assert.That(m.Attr("type"), Is.EqualTo("headline"));
            Assert.That(m.ChildText("subject", Ns.Client), Is.EqualTo("Maintenance"));
            Assert.That(m.ChildText("body", Ns.Client), Is.EqualTo("Down at 22:00\nfor ten minutes"));
        }

        // Gajim's "Send Server Message": a message to DOMAIN/announce/online.
        await admin.SendAsync("<message to='localhost/announce/online' id='g1'><body>Hello from Gajim</body></message>");
        Assert.That((await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == "localhost")).ChildText("body", Ns.Client),
            Is.EqualTo("Hello from Gajim"));
        await bob.SendAsync("<message to='localhost/announce/online' id='b1'><body>I am not an admin</body></message>");
        var error = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(error.Attr("id"), Is.EqualTo("b1"));
        Assert.That(error.Child("error", Ns.Client)?.Child("forbidden", Ns.StanzaErrors), Is.Not.Null);
        Assert.That(await carol.TryReceiveAsync(e => e.ChildText("body", Ns.Client) == "I am not an admin", TimeSpan.FromMilliseconds(300)), Is.Null);
    }

    [Test]
    public async Task The_message_of_the_day_is_shown_once_per_account_until_a_new_one_is_set_and_survives_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-motd-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var server = await TestServer.StartAsync(dir, o => o["Xmpp:Admins:0"] = "admin@localhost"))
            {
                foreach (var u in new[] { "admin", "bob" }) await server.AddUserAsync(u, u + "-pw");
                await using var admin = await Login(server, "admin");
                await RunAsync(admin, "set-motd", ("motd", ["Welcome to our server"]));
                Assert.That((await admin.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == "localhost")).ChildText("body", Ns.Client),
                    Is.EqualTo("Welcome to our server"), "those online see it at once");
            }
            await using (var server = await TestServer.StartAsync(dir, o => o["Xmpp:Admins:0"] = "admin@localhost"))
            {
                await using (var bob = await Login(server, "bob", "phone"))
                    Assert.That((await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == "localhost")).ChildText("body", Ns.Client),
                        Is.EqualTo("Welcome to our server"));
                await using (var bob = await Login(server, "bob", "laptop"))
                    Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null, "once per account");

                await using var admin = await Login(server, "admin");
                Assert.That(await admin.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(300)), Is.Null, "the admin saw it when set");
                // An edit keeps it seen; a new message (Gajim's DOMAIN/announce/motd) is shown again.
                await admin.SendAsync("<message to='localhost/announce/motd/update'><body>Welcome, edited</body></message>");
                await admin.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "Welcome, edited");
                await using (var bob = await Login(server, "bob", "tablet"))
                    Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null);
                await admin.SendAsync("<message to='localhost/announce/motd'><body>Brand new</body></message>");
                await admin.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "Brand new");
                await using (var bob = await Login(server, "bob", "watch"))
                    Assert.That((await bob.ReceiveAsync(e => e.Name == "message")).ChildText("body", Ns.Client), Is.EqualTo("Brand new"));

                var deleted = await Execute(admin, Admin + "delete-motd");
                Assert.That(deleted.Child("command", Commands)?.Attr("status"), Is.EqualTo("completed"));
                await admin.SendAsync("<message to='localhost/announce/motd'><body>Third</body></message>");
                await admin.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == "Third");
                await admin.SendAsync("<message to='localhost/announce/motd/delete'/>");
                await admin.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
                await using (var bob = await Login(server, "bob", "car"))
                    Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(400)), Is.Null, "deleted");
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task Contact_addresses_are_announced_in_disco_info_and_covered_by_the_caps_hash()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:ContactAddresses:Abuse:0"] = "mailto:abuse@example.org";
            o["Xmpp:ContactAddresses:Admin:0"] = "xmpp:admin@localhost";
            o["Xmpp:ContactAddresses:Admin:1"] = "mailto:admin@example.org";
        });
        await using var bob = await TestClient.OpenAsync(server);
        await bob.AuthenticateAsync("bob", "bob-pw");
        var ver = bob.Features!.Child("c", Ns.Caps)!.Attr("ver");
        await bob.BindAsync("pc");
        bob.StartReading();
        var info = (await bob.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).Child("query", Ns.DiscoInfo)!;
        var form = DataForm.Parse(info.Child("x", Ns.DataForms)!);
        Assert.That(form.FormType, Is.EqualTo("http://jabber.org/network/serverinfo"));
        Assert.That(form.Values("abuse-addresses"), Is.EqualTo(new[] { "mailto:abuse@example.org" }));
        Assert.That(form.Values("admin-addresses"), Is.EqualTo(new[] { "xmpp:admin@localhost", "mailto:admin@example.org" }));
        Assert.That(form.Has("sales-addresses"), Is.False, "empty lists are left out");

        // XEP-0115 §5.4: the hash a client computes from this disco#info, form included, is the one in stream features.
        var identities = info.Elements("identity", Ns.DiscoInfo).Select(i => (i.Attr("category")!, i.Attr("type")!, i.Attr("name") ?? ""));
        var features = info.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")!);
        Assert.That(DiscoModule.ComputeVer(identities, features, [form.Element]), Is.EqualTo(ver));
        Assert.That(DiscoModule.ComputeVer(identities, features), Is.Not.EqualTo(ver), "the form changes the hash");
    }
}
