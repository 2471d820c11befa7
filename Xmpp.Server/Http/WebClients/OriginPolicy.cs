using Microsoft.AspNetCore.Http;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Http.WebClients;

/// Xmpp:Http:AllowedOrigins for WebSocket and BOSH: empty allows all; a request without Origin (not from a browser) is
/// always allowed, since the check only protects browser users from pages they did not choose.
internal static class OriginPolicy
{
    public static bool Allows(HttpContext context, HttpOptions options)
    {
        if (options.AllowedOrigins.Count == 0) return true;
        var origin = context.Request.Headers.Origin.ToString();
        if (origin.Length == 0) return true;
        foreach (var allowed in options.AllowedOrigins)
            if (string.Equals(allowed.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }
}
