using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using Xmpp.Server.Hosting;
using Xmpp.Server.Http;
using Xmpp.Storage;

namespace Xmpp.Server.Metrics;

/// GET /metrics: the server's instruments, the storage engines' and the .NET runtime's (GC, thread pool, CPU), written
/// by OpenTelemetry's Prometheus exporter (Prometheus text, or OpenMetrics when the scraper asks). Requests the
/// exporter does not serve (metrics off, not allowed, another method) reach this handler, which refuses them.
public sealed class MetricsHttpHandler(XmppServerOptionsAccessor options) : IHttpHandler
{
    public const string Path = "/metrics";

    private readonly MetricsOptions _options = options.Value.Metrics;

    public PathString PathPrefix => Path;

    public static void AddServices(IServiceCollection services, XmppServerOptions options)
    {
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<IHttpHandler, MetricsHttpHandler>();
        if (!options.Metrics.Enabled) return;
        services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter(ServerMetrics.MeterName, StorageMetrics.MeterName, "System.Runtime")
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
    }

    public static void UseExporter(WebApplication app, XmppServerOptions options)
    {
        if (!options.Metrics.Enabled) return;
        var handler = new MetricsHttpHandler(new XmppServerOptionsAccessor(options));
        // Not on the plain-HTTP ACME challenge listener: a token would travel in clear.
        app.UseOpenTelemetryPrometheusScrapingEndpoint(c => c.Request.IsHttps && c.Request.Path == Path && HttpMethods.IsGet(c.Request.Method) && handler.Allowed(c));
    }

    public Task HandleAsync(HttpContext context)
    {
        context.Response.StatusCode = !_options.Enabled ? StatusCodes.Status404NotFound
            : !Allowed(context) ? StatusCodes.Status403Forbidden
            : StatusCodes.Status405MethodNotAllowed;
        return Task.CompletedTask;
    }

    /// With a token, any address that presents it; without one, loopback only.
    public bool Allowed(HttpContext context)
    {
        if (!string.IsNullOrEmpty(_options.Token))
        {
            var header = context.Request.Headers.Authorization.ToString();
            const string bearer = "Bearer ";
            if (!header.StartsWith(bearer, StringComparison.Ordinal)) return false;
            // Constant time: the comparison must not tell a guesser how much of the token was right.
            return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[bearer.Length..]), Encoding.UTF8.GetBytes(_options.Token));
        }
        return context.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip);
    }
}
