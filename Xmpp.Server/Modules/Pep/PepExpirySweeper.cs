using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Pep;

/// Removes expired PEP items (pubsub#item_expire, the status node's lifetime) in the background.
public sealed class PepExpirySweeper(PepService pep, XmppServerOptionsAccessor options, TimeProvider time, ILogger<PepExpirySweeper> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.Pep.ExpirySweepSeconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    int removed = await pep.SweepExpiredAsync();
                    if (removed > 0) logger.LogDebug("Removed {Count} expired PEP items", removed);
                }
                catch (Exception ex)
                {
                    logger.LogError(ex, "Sweeping expired PEP items failed");
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}
