// XEP-0045: Multi-User Chat, hosted on SUBDOMAIN.DOMAIN for every served domain.
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
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
    Metrics.ServerMetrics metrics)
    : IXmppModule
{
    private readonly Dictionary<string, MucService> _services = new(StringComparer.Ordinal);

    /// The services by domain, for tests and admin tools.
    public IReadOnlyDictionary<string, MucService> Services => _services;

    public void Register(IModuleBuilder module)
    {
        var o = options.Value.Muc;
        if (!o.Enabled) return;
        foreach (var domain in domains.All)
        {
            var serviceDomain = o.Subdomain + "." + domain;
            var service = new MucService(serviceDomain, router, new MucStore(storage), o, options.Value.Mam, loggers.CreateLogger<MucService>(), options.Value.RateLimits, metrics);
            _services[serviceDomain] = service;
            // §6.1, §6.3: the service's own address answers disco; rooms and occupants are the service's entities.
            module.Service(serviceDomain, domain, MucService.Name, service.HandleAsync);
            module.ServiceIq(serviceDomain, "query", Ns.DiscoInfo, service.InfoAsync);
            module.ServiceIq(serviceDomain, "query", Ns.DiscoItems, service.ItemsAsync);
        }
    }
}
