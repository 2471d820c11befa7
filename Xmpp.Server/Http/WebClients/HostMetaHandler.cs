using System.Net;
using System.Security;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Http.WebClients;

/// XEP-0156 §3: /.well-known/host-meta (XRD) and host-meta.json list the WebSocket and BOSH URLs, readable from any page.
internal sealed class HostMetaHandler(XmppServerOptions options) : IHttpHandler
{
    public const string WebSocketRel = "urn:xmpp:alt-connections:websocket";
    public const string BoshRel = "urn:xmpp:alt-connections:xbosh";

    public PathString PathPrefix => "/.well-known";

    public async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value;
        bool json = path == "/.well-known/host-meta.json";
        if (!json && path != "/.well-known/host-meta")
        {
            context.Response.StatusCode = (int)HttpStatusCode.NotFound;
            return;
        }
        context.Response.Headers.AccessControlAllowOrigin = "*";
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            context.Response.StatusCode = HttpMethods.IsOptions(context.Request.Method) ? (int)HttpStatusCode.NoContent : (int)HttpStatusCode.MethodNotAllowed;
            context.Response.Headers.AccessControlAllowMethods = "GET, HEAD, OPTIONS";
            return;
        }
        var links = Links(context);
        context.Response.ContentType = json ? "application/json" : "application/xrd+xml; charset=utf-8";
        await context.Response.WriteAsync(json ? Json(links) : Xrd(links));
    }

    private List<(string Rel, string Href)> Links(HttpContext context)
    {
        var https = options.Http.PublicUrl.Length > 0 ? options.Http.PublicUrl.TrimEnd('/') : "https://" + context.Request.Host.Value;
        var links = new List<(string, string)>(2);
        if (options.Http.WebSocket) links.Add((WebSocketRel, "wss" + https["https".Length..] + WebSocketHandler.Path));
        if (options.Http.Bosh) links.Add((BoshRel, https + "/http-bind"));
        return links;
    }

    private static string Xrd(List<(string Rel, string Href)> links)
    {
        var lines = links.Select(l => $"  <Link rel='{l.Rel}' href='{SecurityElement.Escape(l.Href)}'/>\n");
        return "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n" + string.Concat(lines) + "</XRD>\n";
    }

    private static string Json(List<(string Rel, string Href)> links) =>
        JsonSerializer.Serialize(new { links = links.Select(l => new { rel = l.Rel, href = l.Href }) });
}
