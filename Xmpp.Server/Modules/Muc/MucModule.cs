// XEP-0045: Multi-User Chat, hosted on SUBDOMAIN.DOMAIN for every served domain.
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Server.Cluster;
using Xmpp.Server.Sessions;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Muc;

/// Registers one MUC service per served domain with the router; the services own the rooms.
[Xep("XEP-0045", "1.34.3")]
[Xep("XEP-0004", "2.13.0", "room configuration and room information forms")]
[Xep("XEP-0203", "2.0", "delay stamps on room history")]
[Xep("XEP-0359", "0.7.0", "stanza-id by the room on groupchat messages")]
[Xep("XEP-0421", "0.2.0", "occupant-id in room presence and messages")]
[Xep("XEP-0410", "1.1.0", "the room answers occupants' self-pings")]
[Xep("XEP-0249", "1.2", "direct invitations pass through unchanged")]
[Xep("XEP-0313", "1.1.3", "room archives (MUC archives), queried at the room JID; metadata")]
[Xep("XEP-0425", "0.3.0", "moderators retract messages; archive and history keep a tombstone")]
public sealed class MucModule(IRouter router, IStorage storage, ServedDomains domains, XmppServerOptionsAccessor options, ILoggerFactory loggers,
    Metrics.ServerMetrics metrics, IServiceProvider services)
    : IXmppModule
{
    private readonly Dictionary<string, MucService> _services = new(StringComparer.Ordinal);

    /// The services by domain, for tests and admin tools.
    public IReadOnlyDictionary<string, MucService> Services => _services;

    public void Register(IModuleBuilder module)
    {
        var o = options.Value.Muc;
        if (!o.Enabled) return;
        var hosting = ClusterHosting();
        foreach (var domain in domains.All)
        {
            var serviceDomain = o.Subdomain + "." + domain;
            var service = new MucService(serviceDomain, router, new MucStore(storage, hosting), o, options.Value.Mam, loggers.CreateLogger<MucService>(),
                options.Value.RateLimits, metrics, hosting);
            _services[serviceDomain] = service;
            hosting?.OnDestroyRequest(serviceDomain, (room, reason) => service.DestroyAsync(Jid.Parse(room).Local!, reason));
            // §6.1, §6.3: the service's own address answers disco; rooms and occupants are the service's entities.
            module.Service(serviceDomain, domain, MucService.Name, service.HandleAsync);
            module.ServiceIq(serviceDomain, "query", Ns.DiscoInfo, service.InfoAsync);
            module.ServiceIq(serviceDomain, "query", Ns.DiscoItems, service.ItemsAsync);
        }
    }

    /// The room host per room in a cluster (issue 17): absent on a single node, where nothing here is loaded.
    public IRoomHosting? Hosting { get; private set; }

    private IRoomHosting? ClusterHosting() => services.GetService<INodeBus>() is { } bus ? ClusterHosting(bus) : null;

    // Its own method, never inlined: compiling it loads the Redis client, which a single node must not load.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private IRoomHosting ClusterHosting(INodeBus bus)
    {
        if (storage is not Storage.Postgres.PostgresStorage postgres)
            throw new InvalidOperationException("Cluster rooms need PostgreSQL storage (Xmpp:Storage:Provider postgresql)");
        var hosting = new ClusterRoomHosting(bus, services.GetRequiredService<IConnectionMultiplexer>(), postgres.RoomFence,
            loggers.CreateLogger<ClusterRoomHosting>());
        hosting.RoomsLost += room =>
        {
            if (room is null)
                foreach (var service in _services.Values) service.Evict(null);
            else if (Jid.TryParse(room, out var jid) && _services.TryGetValue(jid!.Domain, out var service))
                service.Evict(jid.Local);
        };
        var directory = services.GetRequiredService<ISessionDirectory>();
        hosting.NodeDown += node => _ = SweepAfterNodeDownAsync(directory);
        Hosting = hosting;
        return hosting;
    }

    // The dead node's sessions leave the directory once a survivor has cleaned up after it, shortly after NodeDown:
    // the rooms look a few times, each time dropping the occupants whose sessions are gone by then.
    private async Task SweepAfterNodeDownAsync(ISessionDirectory directory)
    {
        bool Gone(Jid full) => domains.IsLocal(full) && directory.Find(full) is null;
        foreach (var delay in new[] { 500, 2000, 5000 })
        {
            await Task.Delay(delay);
            foreach (var service in _services.Values) service.SweepOccupants(Gone);
        }
    }
}
