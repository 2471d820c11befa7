using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Storage;

namespace Xmpp.Server.Streams;

/// Graceful shutdown: every stream gets system-shutdown (RFC 6120 §4.9.3.20), then storage is flushed.
/// Streams are closed when stopping begins, before Kestrel stops and waits for its connections to end.
public sealed class ShutdownService(
    ConnectionTracker connections,
    IStorage storage,
    IHostApplicationLifetime lifetime,
    ILogger<ShutdownService> logger) : IHostedService
{
    private int _closed;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(CloseAll);
        return Task.CompletedTask;
    }

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
