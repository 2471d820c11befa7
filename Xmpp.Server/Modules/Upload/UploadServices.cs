using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Http;

namespace Xmpp.Server.Modules.Upload;

/// The upload feature's parts: the XMPP module, the HTTP handler on the HTTPS endpoint, and the cleanup.
public static class UploadServices
{
    public static void Add(IServiceCollection services)
    {
        services.AddSingleton<UploadSlots>();
        services.AddSingleton<UploadFiles>();
        services.AddSingleton<UploadModule>();
        services.AddSingleton<IXmppModule>(sp => sp.GetRequiredService<UploadModule>());
        services.AddSingleton<UploadHttpHandler>();
        services.AddSingleton<IHttpHandler>(sp => sp.GetRequiredService<UploadHttpHandler>());
        services.AddSingleton<UploadCleanupService>();
        services.AddHostedService(sp => sp.GetRequiredService<UploadCleanupService>());
    }
}
