using Microsoft.AspNetCore.Http;

namespace Xmpp.Server.Http;

/// A service on the HTTPS endpoint that owns every request under one path prefix (upload, later WebSocket and BOSH).
public interface IHttpHandler
{
    /// The first path segment(s) this handler serves, e.g. "/upload".
    PathString PathPrefix { get; }

    Task HandleAsync(HttpContext context);
}
