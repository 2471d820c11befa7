using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Storage;

namespace Xmpp.Server.Streams;

/// Graceful shutdown: every stream gets system-shutdown (RFC 6120 §4.9.3.20), then storage is flushed.
/// Streams are closed when stopping begins, before Kestrel stops and waits for its connections to end. With
/// Xmpp:DrainSeconds the node first drains: GET /ready says "stopping" (503) while the listeners still accept and the
/// streams stay open, so a load balancer takes the node out before its clients are closed and reconnect through it.
public sealed class ShutdownService(
    ConnectionTracker connections,
    IStorage storage,
    IHostApplicationLifetime lifetime,
    Hosting.XmppServerOptions options,
    ILogger<ShutdownService> logger) : IHostedLifecycleService, Metrics.IReadinessCheck
{
    private int _closed;
    private volatile bool _stopping;

    // A stop by StopAsync (not by a signal, whose lifetime signals ApplicationStopping first) runs StoppingAsync before
    // ApplicationStopping is signalled; so the drain says "stopping" itself, whichever way the stop began.
    public ValueTask<string?> ProblemAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_stopping ? "stopping" : null);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.DrainSeconds == 0) lifetime.ApplicationStopping.Register(CloseAll);
        return Task.CompletedTask;
    }

    // Lifecycle StoppingAsync runs before any hosted service stops, Kestrel included, which keeps accepting meanwhile.
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        if (options.DrainSeconds == 0) return;
        logger.LogInformation("Stopping: draining for {Seconds} s (GET /ready answers 503) before closing {Count} streams",
            options.DrainSeconds, connections.Count);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(options.DrainSeconds), cancellationToken);
        }
        catch (OperationCanceledException) { }
        CloseAll();
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void CloseAll()
    {
        foreach (var stream in connections.All)
        {
            stream.CloseWithError(StreamErrors.SystemShutdown, "The server is shutting down");
            Interlocked.Increment(ref _closed);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        CloseAll(); // streams that connected while stopping began
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (connections.Count > 0 && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
            await Task.Delay(50, CancellationToken.None);
        await storage.FlushAsync();
        logger.LogInformation("Shut down: closed {Count} streams, storage flushed", _closed);
    }
}
