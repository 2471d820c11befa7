using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Invites;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0401 invitations over real sockets: XEP-0445 pre-authenticated in-band registration (open registration stays
/// off), XEP-0379 pre-authenticated subscription, and the ad-hoc commands that create invitations. "alice" invites,
/// "admin" is the administrator, "bob" has an account already.
[TestFixture]
public sealed class InvitesModuleTests
{
    private const string Commands = "http://jabber.org/protocol/commands";

    internal static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Admins:0"] = "admin@localhost";
            configure?.Invoke(o);
        });
        foreach (var u in new[] { "alice", "admin", "bob" }) await s.AddUserAsync(u, u + "-password");
        return s;
    }

    private static Task<TestClient> Login(TestServer s, string user, string? password = null) =>
        TestClient.ConnectAsync(s, user, password ?? user + "-password", "pc", sendPresence: true);

    private static async Task<Element> PreAuthIq(TestClient c, string xml)
    {
        await c.SendRawAsync(xml);
        return await c.ReadElementAsync();
    }

    private static Task<Element> PresentToken(TestClient c, string token) =>
        PreAuthIq(c, $"<iq type='set' id='pa' to='localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>");

    private static Task<Element> RegisterIq(TestClient c, string user, string password) =>
        PreAuthIq(c, $"<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{user}</username><password>{password}</password></query></iq>");

    private static string? ErrorCondition(Element iq) => iq.Child("error", Ns.Client)?.FirstElement?.Name;

    /// The subscription state of each contact in the account's stored roster (items hidden from the roster left out).
    internal static async Task<Dictionary<string, Subscription>> Roster(TestServer s, string user) =>
        (await s.Get<IStorage>().Rosters.GetAsync(user)).Items.Where(i => i.InRoster).ToDictionary(i => i.Jid, i => i.Subscription);

    [Test]
    public async Task An_account_invitation_registers_in_band_with_registration_off_and_the_newcomer_and_inviter_are_subscribed_both_ways()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", "alice@localhost", TimeSpan.FromDays(1));
        await using var alice = await Login(server, "alice");
        await alice.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");

        await using (var plain = await TestClient.OpenAsync(server, TlsMode.None))
            Assert.That(plain.Features!.Child("register", Ns.IbrToken), Is.Null, "not before the TLS the server requires");
        await using (var c = await TestClient.OpenAsync(server))
        {
            // XEP-0445 §2 and XEP-0401: the token features are offered, open registration is not.
            Assert.That(c.Features!.Child("register", Ns.IbrToken), Is.Not.Null, c.Features.ToString());
            Assert.That(c.Features.Child("register", Ns.Invite), Is.Not.Null);
            Assert.That(c.Features.Child("register", Ns.RegisterFeature), Is.Null);
            Assert.That((await PresentToken(c, token)).Attr("type"), Is.EqualTo("result"));
            var form = await PreAuthIq(c, "<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>");
            Assert.That(form.Child("query", Ns.Register)?.Child("username", Ns.Register), Is.Not.Null, form.ToString());
            var done = await RegisterIq(c, "Juliet", "juliet-password");
            Assert.That(done.Attr("type"), Is.EqualTo("result"), done.ToString());
            // The token was spent on that account; a second one on the same stream is open registration again (off).
            Assert.That(ErrorCondition(await RegisterIq(c, "mallory", "mallory-password")), Is.EqualTo("service-unavailable"));
        }

        // Alice's client is told at once (RFC 6121 §2.1.6 roster push).
        var push = await alice.ReceiveAsync(e => e.Child("query", Ns.Roster)?.Child("item", Ns.Roster)?.Attr("jid") == "juliet@localhost");
        Assert.That(push.Child("query", Ns.Roster)!.Child("item", Ns.Roster)!.Attr("subscription"), Is.EqualTo("both"));
        await using var juliet = await Login(server, "juliet", "juliet-password");
        var roster = await juliet.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(X.Matches(roster, "<iq type='result'><query xmlns='jabber:iq:roster'><item jid='alice@localhost' subscription='both'/></query></iq>"),
            roster.ToString());
        // Subscribed both ways means presence flows: Juliet's login brings Alice's presence.
        var presence = await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("from")?.StartsWith("alice@localhost/") == true);
        Assert.That(presence.Attr("type"), Is.Null);
        Assert.That((await Roster(server, "alice"))["juliet@localhost"], Is.EqualTo(Subscription.Both));
    }

    [Test]
    public async Task Without_a_token_or_with_a_wrong_one_no_account_is_created()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1));
        await using var c = await TestClient.OpenAsync(server);
        Assert.That(ErrorCondition(await RegisterIq(c, "mallory", "mallory-password")), Is.EqualTo("service-unavailable"));
        // Same length and alphabet as a real token, one character changed.
        var wrong = (token[0] == 'A' ? 'B' : 'A') + token[1..];
        Assert.That(ErrorCondition(await PresentToken(c, wrong)), Is.EqualTo("forbidden"));
        Assert.That(ErrorCondition(await PresentToken(c, "not-a-token")), Is.EqualTo("forbidden"));
        Assert.That(ErrorCondition(await RegisterIq(c, "mallory", "mallory-password")), Is.EqualTo("service-unavailable"));
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("mallory"), Is.Null);
    }

    [Test]
    public async Task A_reusable_invitation_creates_as_many_accounts_as_it_allows_and_a_taken_name_spends_no_use()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1), maxUses: 2);
        await using (var c = await TestClient.OpenAsync(server))
        {
            Assert.That((await PresentToken(c, token)).Attr("type"), Is.EqualTo("result"));
            Assert.That(ErrorCondition(await RegisterIq(c, "bob", "another-password")), Is.EqualTo("conflict"));
            Assert.That((await RegisterIq(c, "user1", "user1-password")).Attr("type"), Is.EqualTo("result"));
        }
        await using (var c = await TestClient.OpenAsync(server))
        {
            Assert.That((await PresentToken(c, token)).Attr("type"), Is.EqualTo("result"));
            Assert.That((await RegisterIq(c, "user2", "user2-password")).Attr("type"), Is.EqualTo("result"));
        }
        await using (var c = await TestClient.OpenAsync(server))
            Assert.That(ErrorCondition(await PresentToken(c, token)), Is.EqualTo("forbidden"), "two uses, both spent");
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("user2"), Is.Not.Null);
    }

    [Test]
    public async Task A_token_presented_before_its_invitation_is_used_up_elsewhere_creates_no_account()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1));
        await using var first = await TestClient.OpenAsync(server);
        await using var second = await TestClient.OpenAsync(server);
        Assert.That((await PresentToken(first, token)).Attr("type"), Is.EqualTo("result"));
        Assert.That((await PresentToken(second, token)).Attr("type"), Is.EqualTo("result"));
        Assert.That((await RegisterIq(first, "user1", "user1-password")).Attr("type"), Is.EqualTo("result"));
        // The single use is counted when the account is made, not when the token is shown.
        Assert.That(ErrorCondition(await RegisterIq(second, "user2", "user2-password")), Is.EqualTo("forbidden"));
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("user2"), Is.Null);
    }

    [Test]
    public async Task An_expired_invitation_is_refused()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromMilliseconds(50));
        await Task.Delay(200);
        await using var c = await TestClient.OpenAsync(server);
        Assert.That(ErrorCondition(await PresentToken(c, token)), Is.EqualTo("forbidden"));
        Assert.That(ErrorCondition(await RegisterIq(c, "late", "late-password")), Is.EqualTo("service-unavailable"));
    }

    /// Runs a command that has no form and returns its result form's fields.
    private static async Task<Dictionary<string, string>> RunCommand(TestClient c, string node)
    {
        var reply = await c.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Commands}' node='{node}' action='execute'/></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
        var command = reply.Child("command", Commands)!;
        Assert.That(command.Attr("status"), Is.EqualTo("completed"));
        return command.Child("x", Ns.DataForms)!.Elements("field", Ns.DataForms)
            .ToDictionary(f => f.Attr("var")!, f => f.ChildText("value", Ns.DataForms) ?? "");
    }

    private static string TokenOf(string uri) => uri[(uri.IndexOf("preauth=", StringComparison.Ordinal) + 8)..].Split(';')[0];

    [Test]
    public async Task A_user_creates_a_contact_invitation_by_ad_hoc_command_and_a_subscription_request_with_its_token_is_approved_both_ways()
    {
        await using var server = await Server();
        await using var alice = await Login(server, "alice");
        await alice.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        var fields = await RunCommand(alice, "urn:xmpp:invite#invite");
        // XEP-0379 §2: a roster URI for Alice; no 'ibr=y', since users may not invite accounts by default.
        Assert.That(fields["uri"], Does.Match("^xmpp:alice@localhost\\?roster;preauth=[A-Za-z0-9_-]{24}$"));
        Assert.That(fields, Does.ContainKey("expire"));
        var token = TokenOf(fields["uri"]);

        await using var bob = await Login(server, "bob");
        await bob.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        await bob.SendAsync($"<presence type='subscribe' to='alice@localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></presence>");

        // Bob is told Alice approved, and gets her presence; Alice's client is never asked.
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribed" && e.Attr("from") == "alice@localhost");
        Assert.That(await Wait.UntilAsync(async () => (await Roster(server, "alice")).GetValueOrDefault("bob@localhost") == Subscription.Both
            && (await Roster(server, "bob")).GetValueOrDefault("alice@localhost") == Subscription.Both), Is.True,
            "both rosters say 'both'");
        var asked = await alice.TryReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", TimeSpan.FromMilliseconds(300));
        Assert.That(asked, Is.Null, "Alice is not asked to approve");

        // The token was single-use: Admin's request with it waits for Alice like any other.
        await using var admin = await Login(server, "admin");
        await admin.SendAsync($"<presence type='subscribe' to='alice@localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></presence>");
        await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == "admin@localhost");
        Assert.That((await Roster(server, "alice")).ContainsKey("admin@localhost"), Is.False);
    }

    [Test]
    public async Task A_subscription_request_with_a_wrong_token_is_left_to_the_owner()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Contact, "localhost", "alice@localhost", TimeSpan.FromDays(1), createsAccount: false);
        await using var alice = await Login(server, "alice");
        await using var bob = await Login(server, "bob");
        var wrong = (token[0] == 'A' ? 'B' : 'A') + token[1..];
        await bob.SendAsync($"<presence type='subscribe' to='alice@localhost'><preauth xmlns='urn:xmpp:pars:0' token='{wrong}'/></presence>");
        await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe" && e.Attr("from") == "bob@localhost");
        Assert.That((await Roster(server, "bob")).GetValueOrDefault("alice@localhost"), Is.EqualTo(Subscription.None));
        // Nor does Alice's token approve a request to someone else.
        await bob.SendAsync($"<presence type='subscribe' to='admin@localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></presence>");
        await Task.Delay(300);
        Assert.That((await Roster(server, "admin")).ContainsKey("bob@localhost"), Is.False);
        Assert.That(await server.Get<InviteStore>().FindAsync("localhost", token), Is.Not.Null, "the token is still unused");
    }

    [Test]
    public async Task An_admin_creates_an_account_invitation_by_ad_hoc_command_that_registers_in_band_and_a_user_may_not()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        var fields = await RunCommand(admin, "urn:xmpp:invite#create-account");
        Assert.That(fields["uri"], Does.Match("^xmpp:localhost\\?register;preauth=[A-Za-z0-9_-]{24}$"));
        await using (var c = await TestClient.OpenAsync(server))
        {
            Assert.That((await PresentToken(c, TokenOf(fields["uri"]))).Attr("type"), Is.EqualTo("result"));
            Assert.That((await RegisterIq(c, "newbie", "newbie-password")).Attr("type"), Is.EqualTo("result"));
        }
        await using (var newbie = await Login(server, "newbie", "newbie-password"))
            Assert.That(newbie.Jid!.Bare.ToString(), Is.EqualTo("newbie@localhost"));

        await using var bob = await Login(server, "bob");
        var refused = await bob.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Commands}' node='urn:xmpp:invite#create-account' action='execute'/></iq>");
        Assert.That(refused.Child("error", Ns.Client)?.Child("forbidden", Ns.StanzaErrors), Is.Not.Null, refused.ToString());
    }

    [Test]
    public async Task An_admin_creates_an_administrator_invite_from_a_client_and_the_invitee_may_run_admin_commands_and_a_user_may_not_create_one()
    {
        await using var server = await Server();
        await using var admin = await Login(server, "admin");
        var fields = await RunCommand(admin, Ns.AdminInvite);
        await using (var c = await TestClient.OpenAsync(server))
        {
            Assert.That((await PresentToken(c, TokenOf(fields["uri"]))).Attr("type"), Is.EqualTo("result"));
            Assert.That((await RegisterIq(c, "deputy", "deputy-password")).Attr("type"), Is.EqualTo("result"));
        }
        await using var deputy = await Login(server, "deputy", "deputy-password");
        var count = await deputy.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Commands}' node='http://jabber.org/protocol/admin#get-online-users-num' action='execute'/></iq>");
        Assert.That(count.Child("command", Commands)?.Attr("status"), Is.EqualTo("completed"), count.ToString());

        await using var bob = await Login(server, "bob");
        var refused = await bob.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Commands}' node='{Ns.AdminInvite}' action='execute'/></iq>");
        Assert.That(refused.Child("error", Ns.Client)?.Child("forbidden", Ns.StanzaErrors), Is.Not.Null, refused.ToString());
    }

    [Test]
    public async Task With_user_account_invitations_on_a_contact_invitation_also_registers_and_subscribes()
    {
        await using var server = await Server(o => o["Xmpp:Invites:UsersMayInviteAccounts"] = "true");
        await using var alice = await Login(server, "alice");
        var fields = await RunCommand(alice, "urn:xmpp:invite#invite");
        Assert.That(fields["uri"], Does.EndWith(";ibr=y"));
        await using (var c = await TestClient.OpenAsync(server))
        {
            Assert.That((await PresentToken(c, TokenOf(fields["uri"]))).Attr("type"), Is.EqualTo("result"));
            Assert.That((await RegisterIq(c, "romeo", "romeo-password")).Attr("type"), Is.EqualTo("result"));
        }
        Assert.That((await Roster(server, "romeo"))["alice@localhost"], Is.EqualTo(Subscription.Both));
        Assert.That((await Roster(server, "alice"))["romeo@localhost"], Is.EqualTo(Subscription.Both));
    }
}
