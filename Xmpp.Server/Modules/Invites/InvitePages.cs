using Microsoft.AspNetCore.Http;
using QRCoder;
using Xmpp.Protocol;
using Xmpp.Protocol.Precis;
using Xmpp.Protocol.Sasl;
using Xmpp.Server.Http;
using static Xmpp.Server.Modules.Invites.HtmlPage;

namespace Xmpp.Server.Modules.Invites;

/// /invite/TOKEN: the page an invitation link opens (XEP-0401 §3's landing page). It says which app to install, offers
/// the xmpp: link as a button and a QR code, and, for an invitation that creates accounts, a sign-up form for those
/// whose app cannot register with the token itself. Sign-up creates the account and subscribes it with the inviter.
public sealed class InvitePages(InviteService invites, WebFormGuard guard) : IHttpHandler
{
    public PathString PathPrefix => "/invite";

    private static readonly (string Name, string Platforms, string Url, (string Store, string Url)[] Stores)[] Clients =
    [
        ("Conversations", "Android", "https://conversations.im/",
            [("Google Play", "https://play.google.com/store/apps/details?id=eu.siacs.conversations"), ("F-Droid", "https://f-droid.org/packages/eu.siacs.conversations/")]),
        ("Monal", "iPhone, iPad and Mac", "https://monal-im.org/",
            [("App Store", "https://apps.apple.com/app/monal-free-xmpp-chat/id317711500")]),
        ("Gajim", "Windows and Linux", "https://gajim.org/", []),
        ("Dino", "Linux", "https://dino.im/", []),
    ];

    public async Task HandleAsync(HttpContext context)
    {
        var options = invites.Options;
        var rest = context.Request.Path.Value!["/invite".Length..].Trim('/');
        var domain = context.Request.Host.Host is { } host && options.Domains.Contains(host, StringComparer.OrdinalIgnoreCase)
            ? host.ToLowerInvariant() : new Hosting.ServedDomains(options.Domains).Default;
        var invite = options.Invites.WebPages ? await invites.Store.FindAsync(domain, rest) : null;
        if (invite is null)
        {
            // One answer for unknown, used-up and expired tokens alike.
            await WriteAsync(context, StatusCodes.Status404NotFound, "Invitation not found",
                "<h1>This invitation is not valid</h1><p>It may have expired, been used up already, or the link may be incomplete. "
                + "Please ask the person who invited you for a new invitation.</p>");
            return;
        }
        if (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method))
        {
            await LandingAsync(context, invite, rest, null, null);
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method) || !invite.CreatesAccount)
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }
        await SignUpAsync(context, invite, rest);
    }

    private async Task SignUpAsync(HttpContext context, Invite invite, string token)
    {
        if (!WebFormGuard.IsFormPost(context.Request)) { context.Response.StatusCode = StatusCodes.Status400BadRequest; return; }
        if (!guard.AllowPost(context))
        {
            await WriteAsync(context, StatusCodes.Status429TooManyRequests, "Too many attempts",
                "<h1>Too many attempts</h1><p>Please wait a minute and try again.</p>");
            return;
        }
        var form = await context.Request.ReadFormAsync();
        if (guard.Refuse(context, form) is { } refused)
        {
            await LandingAsync(context, invite, token, refused, null, StatusCodes.Status403Forbidden);
            return;
        }
        var username = form["username"].ToString().Trim();
        var password = form["password"].ToString();
        if (CheckNewAccount(username, password, form["password2"].ToString(), invites.Options.Registration.MinPasswordLength, out var user) is { } problem)
        {
            await LandingAsync(context, invite, token, problem, username, StatusCodes.Status400BadRequest);
            return;
        }
        switch (await invites.CreateAccountAsync(invite.Domain, token, user, password))
        {
            case InviteService.SignUpResult.Taken:
                await LandingAsync(context, invite, token, $"The username {user} is taken. Please choose another one.", username, StatusCodes.Status409Conflict);
                return;
            case InviteService.SignUpResult.InvalidInvite:
                await WriteAsync(context, StatusCodes.Status404NotFound, "Invitation not found",
                    "<h1>This invitation is not valid</h1><p>It was used up or expired in the meantime.</p>");
                return;
        }
        var jid = $"{user}@{invite.Domain}";
        var body = $"<h1>Welcome, {E(jid)}!</h1><div class=\"ok\" role=\"status\"><p>Your account <strong>{E(jid)}</strong> is ready.</p></div>"
            + "<h2>Next step</h2><p>Open your chat app and log in with this address and the password you chose.</p>"
            + (invite.Inviter is null ? "" : $"<p><strong>{E(invite.Inviter)}</strong> is already in your contacts.</p>")
            + "<p>You can change your password on the <a href=\"/password\">password page</a>.</p>";
        await WriteAsync(context, StatusCodes.Status200OK, "Account created", body);
    }

    /// The checks in-band registration makes too (XEP-0077 §3.1): a PRECIS username, a long enough SASLprep-able password.
    internal static string? CheckNewAccount(string username, string password, string repeated, int minLength, out string user)
    {
        user = "";
        if (username.Length == 0) return "Please choose a username.";
        try { user = Precis.EnforceUsernameCaseMapped(username); Jid.Create(user, "example.org"); }
        catch (FormatException) { return "That username cannot be used. Letters, digits, dots, dashes and underscores are fine."; }
        if (password.Length < minLength) return $"The password needs at least {minLength} characters.";
        if (password != repeated) return "The two passwords are not the same.";
        try { SaslPrep.Prepare(password); }
        catch (FormatException) { return "The password contains characters that cannot be used."; }
        return null;
    }

    private async Task LandingAsync(HttpContext context, Invite invite, string token, string? error, string? username, int status = StatusCodes.Status200OK)
    {
        var uri = InviteLinks.XmppUri(invite, token);
        var title = invite.Inviter is null ? $"You are invited to chat on {invite.Domain}" : $"{invite.Inviter} invites you to chat";
        var body = new System.Text.StringBuilder();
        body.Append($"<h1>{E(title)}</h1>");
        body.Append("<p>This invitation uses XMPP, an open chat network: you choose an app, and can talk to people using any other XMPP app or server.</p>");
        body.Append("<h2>1. Install an app</h2><ul class=\"clients\">");
        foreach (var (name, platforms, url, stores) in Clients)
        {
            body.Append($"<li><a href=\"{E(url)}\">{E(name)}</a> for {E(platforms)}");
            if (stores.Length > 0)
                body.Append(" (").Append(string.Join(", ", stores.Select(s => $"<a href=\"{E(s.Url)}\">{E(s.Store)}</a>"))).Append(')');
            body.Append("</li>");
        }
        body.Append("</ul>");
        body.Append("<h2>2. Open the invitation in the app</h2>");
        body.Append($"<p><a class=\"button\" href=\"{E(uri)}\">Open the invitation</a></p>");
        body.Append($"<p>On another device, scan this code with the app:</p><p><img class=\"qr\" src=\"data:image/png;base64,{Qr(uri)}\" alt=\"QR code of the invitation link {E(uri)}\"></p>");
        body.Append($"<p class=\"hint\">The link: <code>{E(uri)}</code></p>");
        if (invite.CreatesAccount)
        {
            var formToken = WebFormGuard.IssueFormToken(context);
            body.Append("<h2 id=\"signup\">Or create your account here</h2>");
            body.Append($"<p>If your app cannot open the invitation, create the account on <strong>{E(invite.Domain)}</strong> here and then log in with the app.</p>");
            body.Append(Error(error));
            body.Append($"<form method=\"post\" action=\"/invite/{E(token)}\" aria-labelledby=\"signup\">");
            body.Append($"<input type=\"hidden\" name=\"{WebFormGuard.FieldName}\" value=\"{formToken}\">");
            body.Append(Input("username", "Username", "text", "username", username, $"Your address will be username@{invite.Domain}."));
            body.Append(Input("password", "Password", "password", "new-password", hint: $"At least {invites.Options.Registration.MinPasswordLength} characters."));
            body.Append(Input("password2", "Password again", "password", "new-password"));
            body.Append("<p><button type=\"submit\">Create account</button></p></form>");
        }
        else if (error is not null) body.Append(Error(error));
        await WriteAsync(context, status, title, body.ToString());
    }

    /// The xmpp: link as a PNG QR code (QRCoder; error correction M survives a scuffed screen).
    private static string Qr(string text)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCodeGenerator.ECCLevel.M);
        return Convert.ToBase64String(new PngByteQRCode(data).GetGraphic(6));
    }
}
