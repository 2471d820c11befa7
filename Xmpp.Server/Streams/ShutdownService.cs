using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Storage;

namespace Xmpp.Server.Streams;

/// Graceful shutdown: every stream gets system-shutdown (RFC 6120 §4.9.3.20), then storage is flushed.
public sealed class ShutdownService(ConnectionTracker connections, IStorage storage, ILogger<ShutdownService> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        int n = 0;
        foreach (var stream in connections.All)
        {
            stream.CloseWithError(StreamErrors.SystemShutdown, "The server is shutting down");
            n++;
        }
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (connections.Count > 0 && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
            await Task.Delay(50, CancellationToken.None);
        await storage.FlushAsync();
        logger.LogInformation("Shut down: closed {Count} streams, storage flushed", n);
    }
}
