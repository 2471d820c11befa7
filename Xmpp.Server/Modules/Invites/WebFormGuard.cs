using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Invites;

/// What every page with a form needs: security headers, a CSRF check and a per-address limit on submissions.
/// CSRF: the form carries a random value that must equal a cookie set with it (double submit). The cookie is
/// __Host- prefixed, Secure, HttpOnly and SameSite=Strict, so another site can neither read it nor make a browser send
/// it; on top, a POST whose Origin (or, without one, Referer) is another site's is refused, and so is one a browser
/// marks Sec-Fetch-Site cross-site. The pages need no login, so the worst a forged form could do is what its author
/// could do himself; the check still keeps a foreign page from spending a visitor's invitation or password attempts.
public sealed class WebFormGuard(XmppServerOptionsAccessor options, TimeProvider time)
{
    public const string CookieName = "__Host-xmppd-form";
    public const string FieldName = "form-token";

    private readonly ConcurrentDictionary<string, (DateTimeOffset Start, int Count)> _posts = new(StringComparer.Ordinal);

    /// The inline style sheet's hash, so the policy allows exactly it and no other inline style or any script.
    private static readonly string StyleHash = "'sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(HtmlPage.Style))) + "'";

    public static void SecurityHeaders(HttpResponse response)
    {
        var h = response.Headers;
        h.ContentSecurityPolicy = $"default-src 'none'; style-src {StyleHash}; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        h.XContentTypeOptions = "nosniff";
        h.XFrameOptions = "DENY";
        // The invitation token is in the page's URL: links to app stores must not carry it away in a Referer. Not
        // 'no-referrer': under it a browser sends 'Origin: null' with the page's own form posts (Fetch §3.2.5), and
        // the origin check below would refuse them.
        h["Referrer-Policy"] = "same-origin";
        h.CacheControl = "no-store";
    }

    /// The value for a form: the browser's cookie when it has one (so two open tabs both work), else a fresh one.
    public static string IssueFormToken(HttpContext context)
    {
        var value = context.Request.Cookies[CookieName] is { Length: 32 } existing && existing.All(char.IsAsciiHexDigitLower)
            ? existing
            : Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        context.Response.Cookies.Append(CookieName, value, new CookieOptions
        {
            Secure = true, HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", IsEssential = true,
        });
        return value;
    }

    /// Why a submission is refused (shown to the user), or null when it may proceed.
    public string? Refuse(HttpContext context, IFormCollection form)
    {
        var request = context.Request;
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0 && site is not ("same-origin" or "none")) return "The form was sent from another site.";
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0 && Uri.TryCreate(request.Headers.Referer.ToString(), UriKind.Absolute, out var referer))
            origin = referer.GetLeftPart(UriPartial.Authority);
        // 'null' is what a sandboxed frame or a data: page sends: no origin of ours.
        if (origin.Length > 0 && !IsOwnOrigin(request, origin)) return "The form was sent from another site.";
        var cookie = request.Cookies[CookieName] ?? "";
        var field = form[FieldName].ToString();
        if (cookie.Length != 32 || field.Length != 32
            || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(cookie), Encoding.ASCII.GetBytes(field)))
            return "The form has expired. Please fill it in again.";
        return null;
    }

    private bool IsOwnOrigin(HttpRequest request, string origin)
    {
        if (string.Equals(origin, $"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase)) return true;
        var publicUrl = options.Value.Http.PublicUrl;
        return publicUrl.Length > 0 && Uri.TryCreate(publicUrl, UriKind.Absolute, out var u)
            && string.Equals(origin, u.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase);
    }

    /// Counts one submission from the address; false once it has sent Xmpp:Invites:PostsPerMinutePerIp this minute.
    public bool AllowPost(HttpContext context)
    {
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var now = time.GetUtcNow();
        var limit = options.Value.Invites.PostsPerMinutePerIp;
        var entry = _posts.AddOrUpdate(ip, _ => (now, 1), (_, e) => now - e.Start >= TimeSpan.FromMinutes(1) ? (now, 1) : (e.Start, e.Count + 1));
        if (_posts.Count > 10_000)
            foreach (var (key, e) in _posts)
                if (now - e.Start >= TimeSpan.FromMinutes(1)) _posts.TryRemove(key, out _);
        return entry.Count <= limit;
    }

    /// Forms are small; anything else is refused before it is read.
    public static bool IsFormPost(HttpRequest request) =>
        request.HasFormContentType && request.ContentLength is > 0 and <= 16 * 1024;
}
