using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
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
    AccountService accounts,
    Caching.ICacheInvalidation invalidation,
    ServedDomains domains,
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
        invalidation.Subscribe(AccountService.KeysCacheName, AccountKeysChanged);
        return Task.CompletedTask;
    }

    // XEP-0077 §3.2, XEP-0133 §4.2: the sessions of a removed account end. The node that removes it asks each session's
    // node to end it (session-close, asked again until answered); that request can still fail to arrive (the owner
    // stays unreachable for all its attempts). So every node also checks its own sessions when it learns by any path
    // that an account's keys changed (a removal does that: the cache-drop request and the xmpp:cache message): when it
    // holds sessions of that account and the account is no longer in the store, it ends them. One store read per
    // change of keys of an account with sessions here; a password change finds the account and ends nothing.
    private void AccountKeysChanged(string? user)
    {
        if (user is null) return;
        var held = new List<SessionEntry>();
        foreach (var domain in domains.All)
        {
            Jid bare;
            try { bare = Jid.Create(user, domain); }
            catch (JidFormatException) { continue; }
            foreach (var e in directory.Get(bare).Entries)
                if (directory.FindLocal(e.Jid) is { } local && ReferenceEquals(local.Sink, e.Sink)) held.Add(local);
        }
        if (held.Count == 0) return;
        _ = Task.Run(async () =>
        {
            try
            {
                if (await accounts.FindAsync(user) is not null) return;
                foreach (var e in held)
                {
                    log.LogInformation("The account of {Jid} has been removed on another node: its session here ends", e.Jid);
                    e.Sink.Close(StreamErrors.NotAuthorized, "The account has been removed");
                }
            }
            catch (Exception ex) { log.LogError(ex, "Checking the sessions of the removed account {User} failed", user); }
        });
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
