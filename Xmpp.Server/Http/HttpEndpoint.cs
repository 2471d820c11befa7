using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Hosting;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Http;

/// The HTTPS endpoint (Xmpp:HttpPort): Kestrel with the c2s certificates chosen by SNI, and a dispatcher that hands each
/// request to the handler owning its path prefix. No MVC or routing: the few services here each own a prefix.
public sealed class HttpEndpoint(IEnumerable<IHttpHandler> handlers)
{
    private static readonly string[] Alpn = ["h2", "http/1.1"];
    private readonly IHttpHandler[] _handlers = handlers.ToArray();

    public static void Listen(XmppServerOptions options, Action<int, Action<ListenOptions>> listen)
    {
        if (options.HttpPort == 0) return;
        listen(options.HttpPort, l =>
        {
            l.Protocols = HttpProtocols.Http1AndHttp2;
            var certificates = l.ApplicationServices.GetRequiredService<CertificateManager>();
            // The same certificates and SNI selection as the XMPP ports; the selector is looked up per handshake, so a
            // certificate reload reaches HTTPS too.
            ProxyProtocol.ProxyProtocolMiddleware.Use(l, options.ProxyProtocol, "HTTPS");
            HttpConnectionLimit.Use(l, options.Http);
            Tls.Acme.TlsAlpn01Responder.Use(l);
            l.UseHttps(new TlsHandshakeCallbackOptions
            {
                OnConnection = c => certificates.CreateServerOptionsSelector(Alpn)(c.SslStream, c.ClientHelloInfo, null, c.CancellationToken),
                HandshakeTimeout = TimeSpan.FromSeconds(options.Limits.TlsHandshakeTimeoutSeconds),
            });
        });
    }

    public Task InvokeAsync(HttpContext context)
    {
        // Plain HTTP is only the ACME challenge listener: uploads, invitations and metrics never go out without TLS.
        bool plain = !context.Request.IsHttps;
        foreach (var handler in _handlers)
            if ((!plain || handler is IPlainHttpHandler) && context.Request.Path.StartsWithSegments(handler.PathPrefix, StringComparison.Ordinal))
                return handler.HandleAsync(context);
        context.Response.StatusCode = (int)HttpStatusCode.NotFound;
        return Task.CompletedTask;
    }
}
