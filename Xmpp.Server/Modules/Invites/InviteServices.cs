using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Http;

namespace Xmpp.Server.Modules.Invites;

/// The invitation feature's parts: the store, the XMPP module, and the web pages on the HTTPS endpoint.
public static class InviteServices
{
    public static void Add(IServiceCollection services)
    {
        services.AddSingleton<InviteStore>();
        services.AddSingleton<InviteService>();
        services.AddSingleton<IXmppModule, InvitesModule>();
        services.AddSingleton<WebFormGuard>();
        services.AddSingleton<IHttpHandler, InvitePages>();
        services.AddSingleton<IHttpHandler, PasswordPage>();
    }
}
