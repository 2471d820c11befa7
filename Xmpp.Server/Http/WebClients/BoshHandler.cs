using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Http;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Http.WebClients;

/// XEP-0124/XEP-0206 BOSH on /http-bind: POSTed &lt;body/&gt; wrappers carry the elements of one XmppStream per session.
internal sealed class BoshHandler(StreamServices services, XmppServerOptions options, BoshSessions sessions) : IHttpHandler
{
    public static readonly PathString Path = "/http-bind";

    public PathString PathPrefix => Path;

    public async Task HandleAsync(HttpContext context)
    {
        if (!options.Http.Bosh || context.Request.Path != Path)
        {
            context.Response.StatusCode = (int)HttpStatusCode.NotFound;
            return;
        }
        if (!OriginPolicy.Allows(context, options.Http))
        {
            context.Response.StatusCode = (int)HttpStatusCode.Forbidden;
            return;
        }
        // Browsers call from the web client's own origin, so the answers need CORS (preflight included).
        var origin = context.Request.Headers.Origin.ToString();
        context.Response.Headers.AccessControlAllowOrigin = options.Http.AllowedOrigins.Count == 0 || origin.Length == 0 ? "*" : origin;
        context.Response.Headers.Vary = "Origin";
        if (HttpMethods.IsOptions(context.Request.Method))
        {
            context.Response.Headers.AccessControlAllowMethods = "POST, OPTIONS";
            context.Response.Headers.AccessControlAllowHeaders = "Content-Type";
            context.Response.Headers.AccessControlMaxAge = "86400";
            context.Response.StatusCode = (int)HttpStatusCode.NoContent;
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.Headers.Allow = "POST, OPTIONS";
            context.Response.StatusCode = (int)HttpStatusCode.MethodNotAllowed;
            return;
        }
        var answer = await AnswerAsync(context);
        context.Response.ContentType = "text/xml; charset=utf-8";
        context.Response.ContentLength = answer.Length;
        await context.Response.Body.WriteAsync(answer);
    }

    private async Task<byte[]> AnswerAsync(HttpContext context)
    {
        Element body;
        try
        {
            body = await ReadBodyAsync(context);
        }
        catch (XmppStreamException)
        {
            // XEP-0124 §17.2: a request that is not a well-formed <body/> ends nothing but itself.
            return BoshBody.Terminate("bad-request");
        }
        if (!body.Is("body", Ns.HttpBind) || !long.TryParse(body.Attr("rid"), out var rid) || rid < 0)
            return BoshBody.Terminate("bad-request");

        if (body.Attr("sid") is not { } sid)
        {
            if (sessions.Count >= options.Http.BoshMaxSessions) return BoshBody.Terminate("remote-connection-failed");
            int wait = int.TryParse(body.Attr("wait"), out var w) && w > 0 ? Math.Min(w, options.Http.BoshMaxWaitSeconds) : options.Http.BoshMaxWaitSeconds;
            var created = new BoshSession(context, services, rid, wait, options.Http.BoshInactivitySeconds);
            sessions.Add(created);
            var domain = body.Attr("to") is { } to && services.Domains.Contains(to) ? to : services.Domains.Default;
            return await created.CreateAsync(rid, body, domain);
        }
        if (sessions.Find(sid) is not { } session) return BoshBody.Terminate("item-not-found");
        var answer = await session.HandleAsync(rid, body);
        if (session.Ended) sessions.Remove(session);
        return answer;
    }

    private async Task<Element> ReadBodyAsync(HttpContext context)
    {
        int limit = services.ParserLimits.MaxStanzaBytes;
        var reader = context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync();
            if (result.Buffer.Length > limit)
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                throw new XmppStreamException(StreamErrors.PolicyViolation);
            }
            if (result.IsCompleted)
            {
                var bytes = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                var elements = new MessageParser(services.ParserLimits).Parse(SkipDeclaration(bytes));
                return elements.Count == 1 ? elements[0] : throw new XmppStreamException(StreamErrors.BadFormat);
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    internal static ReadOnlyMemory<byte> SkipDeclaration(byte[] bytes)
    {
        var span = bytes.AsSpan();
        int start = span.Length - span.TrimStart(" \t\r\n"u8).Length;
        if (!span[start..].StartsWith("<?xml"u8)) return bytes;
        int end = span.IndexOf("?>"u8);
        return end < 0 ? bytes : bytes.AsMemory(end + 2);
    }
}
