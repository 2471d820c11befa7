using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Hosting;
using Xmpp.Server.Http;

namespace Xmpp.Server.Tls.Acme;

/// The ACME client's parts, registered only when Xmpp:Acme:Enabled is set.
public static class AcmeServices
{
    public static void Add(IServiceCollection services, XmppServerOptions options)
    {
        if (!options.Acme.Enabled) return;
        if (options.Acme.UsesHttp01)
        {
            services.AddSingleton<Http01Responder>();
            services.AddSingleton<IHttpHandler>(sp => sp.GetRequiredService<Http01Responder>());
        }
        else services.AddSingleton<TlsAlpn01Responder>();
        services.AddSingleton<AcmeService>();
        services.AddHostedService(sp => sp.GetRequiredService<AcmeService>());
    }
}
