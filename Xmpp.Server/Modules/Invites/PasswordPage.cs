using Microsoft.AspNetCore.Http;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Http;
using static Xmpp.Server.Modules.Invites.HtmlPage;

namespace Xmpp.Server.Modules.Invites;

/// /password: change an account's password with the old one, for people whose app has no such option. Wrong old
/// passwords count in the same per-account and per-address back-off as failed logins (AuthThrottle), so the page is
/// no faster a way to guess a password than SASL.
public sealed class PasswordPage(AccountService accounts, AuthThrottle throttle, ServedDomains domains, XmppServerOptionsAccessor options,
    WebFormGuard guard) : IHttpHandler
{
    public PathString PathPrefix => "/password";

    public async Task HandleAsync(HttpContext context)
    {
        if (!options.Value.Invites.WebPages || context.Request.Path.Value!.TrimEnd('/') != "/password")
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        if (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method))
        {
            await FormAsync(context, null, null, StatusCodes.Status200OK);
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method)) { context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed; return; }
        if (!WebFormGuard.IsFormPost(context.Request)) { context.Response.StatusCode = StatusCodes.Status400BadRequest; return; }
        if (!guard.AllowPost(context))
        {
            await WriteAsync(context, StatusCodes.Status429TooManyRequests, "Too many attempts", "<h1>Too many attempts</h1><p>Please wait a minute and try again.</p>");
            return;
        }
        var form = await context.Request.ReadFormAsync();
        if (guard.Refuse(context, form) is { } refused) { await FormAsync(context, refused, null, StatusCodes.Status403Forbidden); return; }
        var address = form["jid"].ToString().Trim();
        var (problem, status) = await ChangeAsync(context, address, form["old"].ToString(), form["new"].ToString(), form["new2"].ToString());
        if (problem is not null) { await FormAsync(context, problem, address, status); return; }
        await WriteAsync(context, StatusCodes.Status200OK, "Password changed",
            $"<h1>Password changed</h1><div class=\"ok\" role=\"status\"><p>The password of <strong>{E(address)}</strong> is changed. "
            + "Your apps need the new password the next time they log in.</p></div>");
    }

    private async Task<(string? Problem, int Status)> ChangeAsync(HttpContext context, string address, string old, string next, string next2)
    {
        if (!Jid.TryParse(address, out var jid) || jid.Local is null || jid.Resource is not null || !domains.Contains(jid.Domain))
            return ($"Please enter your full address, such as alice@{domains.Default}.", StatusCodes.Status400BadRequest);
        var user = jid.Local;
        var ipKey = AuthThrottle.IpKey(context.Connection.RemoteIpAddress?.ToString() ?? "unknown");
        var userKey = AuthThrottle.UserKey(user);
        if (throttle.RetryAfter(ipKey) is not null || throttle.RetryAfter(userKey) is not null)
            return ("Too many wrong passwords. Please wait a minute and try again.", StatusCodes.Status429TooManyRequests);
        var account = await accounts.FindAsync(user);
        // One answer for an unknown account and a wrong password, as SASL gives.
        if (account is null || AccountService.Credential(account, ScramHash.Sha256) is not { } credential || !credential.VerifyPassword(old)
            || await accounts.IsDisabledAsync(user))
        {
            throttle.RecordFailure(ipKey);
            throttle.RecordFailure(userKey);
            return ("The address or the current password is wrong.", StatusCodes.Status403Forbidden);
        }
        var min = options.Value.Registration.MinPasswordLength;
        if (next.Length < min) return ($"The new password needs at least {min} characters.", StatusCodes.Status400BadRequest);
        if (next != next2) return ("The two new passwords are not the same.", StatusCodes.Status400BadRequest);
        try { SaslPrep.Prepare(next); }
        catch (FormatException) { return ("The new password contains characters that cannot be used.", StatusCodes.Status400BadRequest); }
        throttle.RecordSuccess(userKey);
        await accounts.ChangePasswordAsync(user, next);
        return (null, StatusCodes.Status200OK);
    }

    private static Task FormAsync(HttpContext context, string? error, string? address, int status)
    {
        var token = WebFormGuard.IssueFormToken(context);
        var body = "<h1 id=\"title\">Change your password</h1>" + Error(error)
            + "<form method=\"post\" action=\"/password\" aria-labelledby=\"title\">"
            + $"<input type=\"hidden\" name=\"{WebFormGuard.FieldName}\" value=\"{token}\">"
            + Input("jid", "Your address", "text", "username", address, "For example alice@example.org.")
            + Input("old", "Current password", "password", "current-password")
            + Input("new", "New password", "password", "new-password")
            + Input("new2", "New password again", "password", "new-password")
            + "<p><button type=\"submit\">Change password</button></p></form>";
        return WriteAsync(context, status, "Change your password", body);
    }
}
