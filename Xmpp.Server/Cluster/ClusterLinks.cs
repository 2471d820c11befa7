using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules;
using Xmpp.Server.Modules.Presence;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Cluster;

/// Joins the node bus to this node's router and directory: a deliver frame goes through the DeliverToSession hooks to
/// the local session with that full JID (or, when it has ended, through the router's undeliverable path), a route frame
/// to the router, and the one survivor that cleans up after a dead node tells that node's contacts its sessions ended.
/// Started before the bus.
public sealed class ClusterLinks(
    RedisNodeBus bus,
    ClusterSessionDirectory directory,
    IRouter router,
    ModuleRegistry modules,
    ILogger<ClusterLinks> log) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _events = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        bus.DeliverHandler = DeliverAsync;
        bus.RouteHandler = (_, stanza) => router.RouteAsync(stanza, null);
        bus.UnhandledHandler = RerouteAsync;
        var presence = modules.Modules.OfType<PresenceModule>().FirstOrDefault();
        directory.SessionsLost = entries => AnnounceAsync(presence, entries);
        _events = Task.Run(() => directory.ReadEventsAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();
        try { await _events.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken); }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException) { }
    }

    private async ValueTask DeliverAsync(string from, Jid to, Element stanza)
    {
        // The routing node ran the Deliver hooks (archive, carbons); the per-session ones (CSI, the offline drain's
        // hold) run here, where the session and its queues are.
        if (directory.FindLocal(to) is { } entry && await router.DeliverToSessionAsync(entry, stanza)) return;
        await router.UndeliveredAsync(stanza);
    }

    // A dead node's unhandled frames: a stanza for one of its sessions is treated as one for a session that ended (a
    // message goes on to the account's other resources or the offline spool; its archive copy, made when it was first
    // routed, keeps its stanza-id, so it is not archived twice); a stanza for its router (a room) is routed again.
    private async ValueTask RerouteAsync(string node, IReadOnlyList<(string Kind, string? Target, Element Stanza)> frames)
    {
        foreach (var (kind, _, stanza) in frames)
        {
            if (kind == "d") await router.UndeliveredAsync(stanza);
            else if (kind == "r") await router.RouteAsync(stanza, null);
        }
    }

    private async ValueTask AnnounceAsync(PresenceModule? presence, IReadOnlyList<SessionEntry> entries)
    {
        if (presence is null) return;
        int told = 0;
        foreach (var e in entries)
        {
            if (!e.Available && e.Directed is not { Count: > 0 }) continue;
            try
            {
                await presence.AnnounceGoneAsync(e.Jid, e.Presence, e.Available, e.Directed);
                told++;
            }
            catch (Exception ex) { log.LogError(ex, "Unavailable presence for {Jid} of a dead node failed", e.Jid); }
        }
        log.LogInformation("A dead node's {Count} sessions removed; unavailable presence sent for {Told}", entries.Count, told);
    }
}
