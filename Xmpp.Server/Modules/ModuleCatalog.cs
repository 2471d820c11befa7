using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Modules.Announce;
using Xmpp.Server.Modules.Blocking;
using Xmpp.Server.Modules.Carbons;
using Xmpp.Server.Modules.Csi;
using Xmpp.Server.Modules.Disco;
using Xmpp.Server.Modules.ExternalServices;
using Xmpp.Server.Modules.LastActivity;
using Xmpp.Server.Modules.Mds;
using Xmpp.Server.Modules.Profiles;
using Xmpp.Server.Modules.Muc;
using Xmpp.Server.Modules.Mam;
using Xmpp.Server.Modules.Offline;
using Xmpp.Server.Modules.Pep;
using Xmpp.Server.Modules.Invites;
using Xmpp.Server.Modules.Ping;
using Xmpp.Server.Modules.Register;
using Xmpp.Server.Modules.Requests;
using Xmpp.Server.Modules.Time;
using Xmpp.Server.Modules.Upload;
using Xmpp.Server.Modules.Version;
using Xmpp.Server.Modules.Presence;
using Xmpp.Server.Modules.Push;
using Xmpp.Server.Modules.Proxy65;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Modules.StreamManagement;

namespace Xmpp.Server.Modules;

/// The modules the server loads, in one list: adding a feature adds one line here.
public static class ModuleCatalog
{
    public static void AddModules(IServiceCollection services)
    {
        services.AddSingleton<SessionEvents>();
        services.AddSingleton<IXmppModule, DiscoModule>();
        services.AddSingleton<IXmppModule, ContactAddressesModule>();
        services.AddSingleton<AdHocCommands>();
        services.AddSingleton<AdminSet>().AddHostedService(sp => sp.GetRequiredService<AdminSet>());
        services.AddSingleton<AdHocModule>().AddSingleton<IXmppModule>(sp => sp.GetRequiredService<AdHocModule>());
        services.AddSingleton<IXmppModule, ServiceAdminModule>();
        services.AddSingleton<IXmppModule, BlockListCommandModule>();
        services.AddSingleton<IXmppModule, AnnounceModule>();
        services.AddSingleton<IXmppModule, StreamLimitsModule>();
        services.AddSingleton<IXmppModule, PingModule>();
        services.AddSingleton<IXmppModule, TimeModule>();
        services.AddSingleton<IXmppModule, VersionModule>();
        services.AddSingleton<IXmppModule, RegisterModule>();
        InviteServices.Add(services);
        services.AddSingleton<IXmppModule, MamModule>();
        services.AddSingleton<OfflineModule>().AddSingleton<IXmppModule>(sp => sp.GetRequiredService<OfflineModule>());
        services.AddSingleton<RosterService>();
        services.AddSingleton<IRosterService>(sp => sp.GetRequiredService<RosterService>());
        services.AddSingleton<IXmppModule, RosterModule>();
        services.AddSingleton<IXmppModule, PresenceModule>();
        services.AddSingleton<IXmppModule, CarbonsModule>();
        services.AddSingleton<IXmppModule, CsiModule>();
        services.AddSingleton<AbuseReports>();
        services.AddSingleton<IXmppModule, BlockingModule>();
        services.AddSingleton<IXmppModule, AbuseReportsModule>();
        services.AddSingleton<IXmppModule, MessageRequestsModule>();
        services.AddSingleton<IXmppModule, LastActivityModule>();
        services.AddSingleton<VCardModule>().AddSingleton<IVCardService>(sp => sp.GetRequiredService<VCardModule>());
        services.AddSingleton<IXmppModule>(sp => sp.GetRequiredService<VCardModule>());
        services.AddSingleton<PrivateStorageModule>().AddSingleton<IPrivateStorage>(sp => sp.GetRequiredService<PrivateStorageModule>());
        services.AddSingleton<IXmppModule>(sp => sp.GetRequiredService<PrivateStorageModule>());
        services.AddSingleton<IXmppModule, StreamManagementModule>();
        services.AddSingleton<PepStore>().AddSingleton<PepCaps>().AddSingleton<PepService>();
        services.AddSingleton<IPepService>(sp => sp.GetRequiredService<PepService>());
        services.AddSingleton<IXmppModule, PepModule>().AddHostedService<PepExpirySweeper>();
        services.AddSingleton<MucModule>();
        services.AddSingleton<IXmppModule>(sp => sp.GetRequiredService<MucModule>());
        services.AddSingleton<PushRegistrations>();
        services.AddSingleton<PushNotifier>();
        services.AddSingleton<IXmppModule, PushModule>();
        UploadServices.Add(services);
        services.AddSingleton<IXmppModule, ExternalServicesModule>();
        services.AddSingleton<BytestreamRelay>();
        services.AddSingleton<IXmppModule, Proxy65Module>();
        services.AddSingleton<IXmppModule, Links.Components.ComponentsModule>();
        services.AddSingleton<IXmppModule, MdsModule>();
        services.AddSingleton<IXmppModule, AvatarConversionModule>();
        services.AddSingleton<IXmppModule, BookmarksConversionModule>();
    }
}
