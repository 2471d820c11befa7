using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Xmpp.Server.Http.WebClients;

/// Browser transports on the HTTPS endpoint: WebSocket, BOSH and their XEP-0156 discovery.
public static class WebClientServices
{
    public static void Add(IServiceCollection services)
    {
        services.AddSingleton<IHttpHandler, WebSocketHandler>();
        services.AddSingleton<IHttpHandler, HostMetaHandler>();
        services.AddSingleton<BoshSessions>();
        services.AddHostedService(sp => sp.GetRequiredService<BoshSessions>());
        services.AddSingleton<IHttpHandler, BoshHandler>();
    }
}
