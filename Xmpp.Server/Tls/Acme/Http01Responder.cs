using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using Xmpp.Server.Http;

namespace Xmpp.Server.Tls.Acme;

/// Answers http-01 challenges (RFC 8555 §8.3): GET /.well-known/acme-challenge/TOKEN returns the key authorization
/// while the challenge is pending, on the plain-HTTP listener (Xmpp:Acme:Http01Port) and the HTTPS one.
public sealed class Http01Responder : IPlainHttpHandler
{
    private readonly ConcurrentDictionary<string, string> _pending = new(StringComparer.Ordinal);

    public PathString PathPrefix => "/.well-known/acme-challenge";

    public void Add(string token, string keyAuthorization) => _pending[token] = keyAuthorization;

    public void Remove(string token) => _pending.TryRemove(token, out _);

    public async Task HandleAsync(HttpContext context)
    {
        var token = context.Request.Path.Value![(PathPrefix.Value!.Length)..].TrimStart('/');
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }
        if (!_pending.TryGetValue(token, out var answer))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        context.Response.ContentType = "application/octet-stream";
        await context.Response.WriteAsync(answer);
    }
}
