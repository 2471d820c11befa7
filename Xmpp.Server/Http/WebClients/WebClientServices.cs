using Microsoft.Extensions.DependencyInjection;

namespace Xmpp.Server.Http.WebClients;

/// Browser transports on the HTTPS endpoint: WebSocket, BOSH and their XEP-0156 discovery.
public static class WebClientServices
{
    public static void Add(IServiceCollection services)
    {
        services.AddSingleton<IHttpHandler, WebSocketHandler>();
        services.AddSingleton<IHttpHandler, HostMetaHandler>();
    }
}
