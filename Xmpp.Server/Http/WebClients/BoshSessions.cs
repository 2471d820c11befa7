using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;

namespace Xmpp.Server.Http.WebClients;

/// Live BOSH sessions by sid, and the sweeper that ends those whose client stopped sending requests (XEP-0124 §7.1
/// 'inactivity'); the stream then ends as if its socket had dropped, so stream management may still resume it.
internal sealed class BoshSessions : BackgroundService
{
    private readonly ConcurrentDictionary<string, BoshSession> _sessions = new();

    public int Count => _sessions.Count;

    public void Add(BoshSession session) => _sessions[session.Id] = session;

    public BoshSession? Find(string sid) => _sessions.TryGetValue(sid, out var s) ? s : null;

    public void Remove(BoshSession session) => _sessions.TryRemove(session.Id, out _);

    /// Held requests are answered (terminate) at shutdown instead of keeping the HTTP server waiting for them.
    public override Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var session in _sessions.Values) session.End();
        return base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                foreach (var session in _sessions.Values)
                {
                    if (session.IsInactive) session.End();
                    if (session.Ended) Remove(session);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
