using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Xmpp.Server.Http;
using Xmpp.Storage;

namespace Xmpp.Server.Metrics;

/// GET /health: 200 while the process serves HTTP (liveness). GET /ready: 200 once the server has started, while it
/// is not stopping and its storage commits a flush within 5 s; 503 with the reason otherwise, so a load balancer or
/// an orchestrator sends no new clients to a node that cannot store what they send.
public sealed class HealthHttpHandler : IHttpHandler
{
    public static readonly TimeSpan StorageDeadline = TimeSpan.FromSeconds(5);

    public PathString PathPrefix => "/health";

    public async Task HandleAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync("ok\n");
    }

    /// The readiness check, at its own path.
    public sealed class Ready(IHostApplicationLifetime lifetime, IStorage storage, IEnumerable<IReadinessCheck> checks) : IHttpHandler
    {
        public PathString PathPrefix => "/ready";

        public async Task HandleAsync(HttpContext context)
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            context.Response.Headers.CacheControl = "no-store";
            var problem = await ProblemAsync(lifetime, storage, context.RequestAborted);
            foreach (var check in checks)
            {
                if (problem is not null) break;
                problem = await check.ProblemAsync(context.RequestAborted);
            }
            context.Response.StatusCode = problem is null ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            await context.Response.WriteAsync((problem ?? "ready") + "\n");
        }
    }

    internal static async Task<string?> ProblemAsync(IHostApplicationLifetime lifetime, IStorage storage, CancellationToken aborted)
    {
        if (!lifetime.ApplicationStarted.IsCancellationRequested) return "starting";
        if (lifetime.ApplicationStopping.IsCancellationRequested) return "stopping";
        try
        {
            await storage.FlushAsync().WaitAsync(StorageDeadline, aborted);
            return null;
        }
        catch (TimeoutException)
        {
            return "storage does not commit";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return "storage failed: " + ex.GetType().Name;
        }
    }
}
