using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Xmpp.Protocol;
using Xmpp.Server.Modules.Invites;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// The invitation landing and sign-up page and the password page, over HTTPS with HttpClient: what a browser gets,
/// what it may post, and what the posts do to accounts and rosters.
[TestFixture]
public sealed class InvitePagesTests
{
    private static Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null) =>
        InvitesModuleTests.Server(o =>
        {
            TestServer.WithHttp(o);
            configure?.Invoke(o);
        });

    /// A client like a browser: it keeps cookies unless told not to, and reaches the server at https://localhost:PORT.
    internal static HttpClient Http(TestServer server, bool cookies = true) => new(new SocketsHttpHandler
    {
        UseCookies = cookies,
        AllowAutoRedirect = false,
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, server.HttpPort, ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    }) { BaseAddress = new Uri($"https://localhost:{server.HttpPort}") };

    private static string FormToken(string html) => Regex.Match(html, "name=\"form-token\" value=\"([0-9a-f]{32})\"").Groups[1].Value;

    private static async Task<(HttpStatusCode Status, string Html)> PostAsync(HttpClient http, string path, string formToken,
        string? origin = null, params (string Name, string Value)[] fields)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new FormUrlEncodedContent([new("form-token", formToken), .. fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value))]),
        };
        if (origin is not null) request.Headers.Add("Origin", origin);
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static Task<(HttpStatusCode Status, string Html)> SignUpAsync(HttpClient http, string token, string formToken, string user,
        string password, string? repeat = null, string? origin = null) =>
        PostAsync(http, "/invite/" + token, formToken, origin ?? http.BaseAddress!.GetLeftPart(UriPartial.Authority),
            ("username", user), ("password", password), ("password2", repeat ?? password));

    [Test]
    public async Task The_landing_page_names_the_apps_links_the_invitation_shows_its_QR_code_and_a_labelled_form_under_a_strict_policy()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", "alice@localhost", TimeSpan.FromDays(1));
        using var http = Http(server);
        using var response = await http.GetAsync("/invite/" + token);
        var html = await response.Content.ReadAsStringAsync();

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentType!.ToString(), Is.EqualTo("text/html; charset=utf-8"));
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.That(csp, Does.Contain("default-src 'none'").And.Contain("frame-ancestors 'none'").And.Contain("form-action 'self'").And.Not.Contain("script-src"));
        Assert.That(response.Headers.GetValues("X-Content-Type-Options").Single(), Is.EqualTo("nosniff"));
        Assert.That(response.Headers.GetValues("Referrer-Policy").Single(), Is.EqualTo("same-origin"));
        var cookie = response.Headers.GetValues("Set-Cookie").Single();
        Assert.That(cookie, Does.StartWith("__Host-xmppd-form=").And.Contain("secure").And.Contain("samesite=strict").And.Contain("httponly"));

        Assert.That(html, Does.Contain("<html lang=\"en\">").And.Contain("<h1>alice@localhost invites you to chat</h1>"));
        foreach (var site in new[] { "https://conversations.im/", "https://monal-im.org/", "https://gajim.org/", "https://dino.im/" })
            Assert.That(html, Does.Contain($"href=\"{site}\""));
        Assert.That(html, Does.Contain($"class=\"button\" href=\"xmpp:alice@localhost?roster;preauth={token};ibr=y\""));
        var png = Convert.FromBase64String(Regex.Match(html, "src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").Groups[1].Value);
        Assert.That(png[..8], Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }));
        foreach (var field in new[] { "username", "password", "password2" })
            Assert.That(html, Does.Contain($"<label for=\"{field}\">").And.Contain($"<input id=\"{field}\" name=\"{field}\""));
        Assert.That(html, Does.Not.Contain("<script"));
        Assert.That(FormToken(html), Has.Length.EqualTo(32));
    }

    [Test]
    public async Task Signing_up_on_the_page_creates_an_account_that_logs_in_over_XMPP_subscribed_to_the_inviter()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", "alice@localhost", TimeSpan.FromDays(1));
        using var http = Http(server);
        var page = await http.GetStringAsync("/invite/" + token);
        var (status, html) = await SignUpAsync(http, token, FormToken(page), "Juliet", "juliet-password");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), html);
        Assert.That(html, Does.Contain("juliet@localhost").And.Contain("role=\"status\""));
        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "juliet-password", "phone");
        var roster = await juliet.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(X.Matches(roster, "<iq type='result'><query xmlns='jabber:iq:roster'><item jid='alice@localhost' subscription='both'/></query></iq>"),
            roster.ToString());
        Assert.That((await InvitesModuleTests.Roster(server, "alice"))["juliet@localhost"], Is.EqualTo(Subscription.Both));

        // Single use: the page of a spent invitation is the not-found page.
        using var again = await http.GetAsync("/invite/" + token);
        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task A_post_without_the_form_cookie_or_from_another_origin_is_refused_and_creates_nothing()
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1));
        using var browser = Http(server);
        var formToken = FormToken(await browser.GetStringAsync("/invite/" + token));

        // Another site's page can copy a form value it saw, but cannot make the browser send the SameSite cookie.
        using var noCookies = Http(server, cookies: false);
        var (s1, h1) = await SignUpAsync(noCookies, token, formToken, "mallory", "mallory-password");
        Assert.That(s1, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(h1, Does.Contain("role=\"alert\""));
        // With the cookie, but the browser says the form came from elsewhere.
        var (s2, _) = await SignUpAsync(browser, token, formToken, "mallory", "mallory-password", origin: "https://evil.example");
        Assert.That(s2, Is.EqualTo(HttpStatusCode.Forbidden));
        // A wrong form value with the right cookie.
        var (s3, _) = await SignUpAsync(browser, token, new string('0', 32), "mallory", "mallory-password");
        Assert.That(s3, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("mallory"), Is.Null);
        Assert.That(await server.Get<InviteStore>().FindAsync("localhost", token), Is.Not.Null, "the invitation is still unused");
    }

    [Test]
    public async Task Form_mistakes_are_shown_escaped_and_keep_the_invitation()
    {
        await using var server = await Server();
        await server.AddUserAsync("taken", "taken-password");
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1));
        using var http = Http(server);
        var formToken = FormToken(await http.GetStringAsync("/invite/" + token));

        var (s1, h1) = await SignUpAsync(http, token, formToken, "<script>alert(1)</script>", "long-enough-pw");
        Assert.That(s1, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(h1, Does.Not.Contain("<script>").And.Contain("&lt;script&gt;"));
        var (s2, h2) = await SignUpAsync(http, token, FormToken(h1), "romeo", "long-enough-pw", "different-pw");
        Assert.That(s2, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(h2, Does.Contain("not the same"));
        var (s3, _) = await SignUpAsync(http, token, FormToken(h2), "taken", "long-enough-pw");
        Assert.That(s3, Is.EqualTo(HttpStatusCode.Conflict));
        var (s4, _) = await SignUpAsync(http, token, FormToken(h2), "romeo", "long-enough-pw");
        Assert.That(s4, Is.EqualTo(HttpStatusCode.OK), "the mistakes spent no use");
    }

    [TestCase("unknown")]
    [TestCase("expired")]
    public async Task An_unknown_or_expired_invitation_gets_a_clear_not_found_page(string which)
    {
        await using var server = await Server();
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromMilliseconds(50));
        if (which == "unknown") token = (token[0] == 'A' ? 'B' : 'A') + token[1..];
        await Task.Delay(200);
        using var http = Http(server);
        using var response = await http.GetAsync("/invite/" + token);
        var html = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(html, Does.Contain("<h1>This invitation is not valid</h1>").And.Not.Contain("<form"));
        Assert.That(response.Headers.GetValues("Content-Security-Policy").Single(), Does.Contain("frame-ancestors 'none'"));
    }

    [Test]
    public async Task Sign_up_posts_are_limited_per_address()
    {
        await using var server = await Server(o => o["Xmpp:Invites:PostsPerMinutePerIp"] = "2");
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1));
        using var http = Http(server);
        var formToken = FormToken(await http.GetStringAsync("/invite/" + token));
        Assert.That((await SignUpAsync(http, token, formToken, "a", "short")).Status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await SignUpAsync(http, token, formToken, "a", "short")).Status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await SignUpAsync(http, token, formToken, "romeo", "long-enough-pw")).Status, Is.EqualTo(HttpStatusCode.TooManyRequests));
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("romeo"), Is.Null);
    }

    [Test]
    public async Task The_password_page_changes_a_password_given_the_old_one_and_refuses_a_wrong_one()
    {
        await using var server = await Server();
        using var http = Http(server);
        var page = await http.GetStringAsync("/password");
        Assert.That(page, Does.Contain("<label for=\"jid\">").And.Contain("<label for=\"old\">").And.Contain("autocomplete=\"current-password\""));
        var origin = http.BaseAddress!.GetLeftPart(UriPartial.Authority);

        var (wrong, wrongHtml) = await PostAsync(http, "/password", FormToken(page), origin,
            ("jid", "bob@localhost"), ("old", "not-the-password"), ("new", "bob-new-password"), ("new2", "bob-new-password"));
        Assert.That(wrong, Is.EqualTo(HttpStatusCode.Forbidden));
        var (ok, okHtml) = await PostAsync(http, "/password", FormToken(wrongHtml), origin,
            ("jid", "bob@localhost"), ("old", "bob-password"), ("new", "bob-new-password"), ("new2", "bob-new-password"));
        Assert.That(ok, Is.EqualTo(HttpStatusCode.OK), okHtml);

        await using (var bob = await TestClient.ConnectAsync(server, "bob", "bob-new-password", "pc"))
            Assert.That(bob.Jid!.Bare.ToString(), Is.EqualTo("bob@localhost"));
        await using var c = await TestClient.OpenAsync(server);
        Assert.That((await c.TryAuthenticateAsync("bob", "bob-password")).Name, Is.EqualTo("failure"));
    }
}
