using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebSockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Auth;
using Xmpp.Server.Http;
using Xmpp.Server.Http.WebClients;
using Xmpp.Server.Links;
using Xmpp.Server.Links.Components;
using Xmpp.Server.Links.S2s;
using Xmpp.Server.Modules;
using Xmpp.Server.Modules.Proxy65;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams;
using Xmpp.Server.Streams.StreamManagement;
using Xmpp.Server.Tls;
using Xmpp.Storage;

using Microsoft.Extensions.Hosting.Systemd;

namespace Xmpp.Server.Hosting;

/// Builds the Generic Host: Kestrel listeners, storage, the session directory, router and modules.
public static class XmppHost
{
    /// configureServices runs after the server's own registrations, so tests can replace one (a fake TimeProvider).
    /// Throws DataDirLockException when another process holds the data folder.
    public static WebApplication Build(XmppServerOptions options, IConfiguration configuration, Action<IServiceCollection>? configureServices = null)
    {
        // Taken before anything opens the store, held until the host is disposed (the container disposes it last, as
        // the first singleton it resolved), and dropped by the kernel if the process dies.
        var dataLock = DataDirLock.Acquire(options.DataDir);
        try
        {
            return Build(options, configuration, configureServices, dataLock);
        }
        catch
        {
            dataLock.Dispose();
            throw;
        }
    }

    private static WebApplication Build(XmppServerOptions options, IConfiguration configuration, Action<IServiceCollection>? configureServices,
        DataDirLock dataLock)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = Directory.GetCurrentDirectory() });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        // systemd connects stdout to the journal and says so in JOURNAL_STREAM: then each line carries its syslog
        // priority (<6> info, <4> warning, <3> error) for journalctl -p, and no timestamp, which the journal adds.
        if (Environment.GetEnvironmentVariable("JOURNAL_STREAM") is { Length: > 0 })
            builder.Logging.AddSystemdConsole();
        else
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            });
        if (configuration["Logging:LogLevel:Default"] is null) builder.Logging.SetMinimumLevel(LogLevel.Information);
        // The empty builder has no lifetime: without one SIGTERM and Ctrl+C would not start a graceful stop. A
        // Type=notify unit sets NOTIFY_SOCKET: systemd's lifetime also reports READY=1 once every listener is up
        // (so a dependent unit starts only then) and STOPPING=1 when the stop begins (sd_notify(3)).
        if (Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is { Length: > 0 })
        {
            builder.Services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
            builder.Services.AddSingleton<IHostLifetime, SystemdLifetime>();
        }
        else
            builder.Services.AddSingleton<IHostLifetime, Microsoft.Extensions.Hosting.Internal.ConsoleLifetime>();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.UseSockets(sockets => sockets.Backlog = options.ListenBacklog);
        // The client ports (Xmpp:C2sPort, Xmpp:C2sTlsPort) are not Kestrel's: Streams/C2sListener.cs.
        var kestrelListeners = new List<Action<KestrelServerOptions>>();
        void Listen(int port, Action<ListenOptions> configure)
        {
            if (port != 0) kestrelListeners.Add(kestrel => ListenOn(kestrel, options, port, configure));
        }
        HttpEndpoint.Listen(options, Listen);
        Listen(options.Proxy65.Port, l => l.UseConnectionHandler<Socks5ConnectionHandler>());
        // Plain HTTP for ACME http-01 challenges only (HttpEndpoint serves nothing else without TLS).
        if (options.Acme is { Enabled: true, UsesHttp01: true }) Listen(options.Acme.Http01Port, l => l.Protocols = HttpProtocols.Http1);
        if (options.S2s.Enabled)
        {
            Listen(options.S2s.Port, l => l.UseConnectionHandler<S2sConnectionHandler>());
            Listen(options.S2s.DirectTlsPort, l => l.UseConnectionHandler<S2sDirectTlsConnectionHandler>());
        }
        // XEP-0114 components: their own addresses (loopback by default), not the client-facing ones.
        if (options.Components.Enabled && options.Components.Port > 0)
            foreach (var address in options.Components.Addresses)
                kestrelListeners.Add(kestrel => kestrel.Listen(IPAddress.Parse(address), options.Components.Port, l => l.UseConnectionHandler<ComponentConnectionHandler>()));
        // Kestrel without a single endpoint would listen on localhost:5000 of its own accord.
        if (kestrelListeners.Count == 0) builder.Services.AddSingleton<Microsoft.AspNetCore.Hosting.Server.IServer, NoHttpServer>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Slowloris on HTTPS: headers, bodies and idle keep-alives each have a deadline (docs/security.md).
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(options.Http.RequestHeadersTimeoutSeconds);
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(options.Http.KeepAliveTimeoutSeconds);
            kestrel.Limits.MinRequestBodyDataRate = options.Http.MinRequestBodyBytesPerSecond > 0
                ? new MinDataRate(options.Http.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(5)) : null;
            foreach (var listen in kestrelListeners) listen(kestrel);
        });
        // The drain (Xmpp:DrainSeconds, /ready answering 503 while the listeners still accept) comes on top of the 15 s.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(15 + options.DrainSeconds));
        builder.Services.AddSingleton(_ => dataLock);
        AddServices(builder.Services, options);
        // Registered last so it stops first: no admin command starts while storage is being flushed and closed.
        builder.Services.AddHostedService<AdminSocketService>();
        builder.Services.AddHostedService<InlineSocketCompletionsCheck>();
        builder.Services.AddWebSockets(w => w.KeepAliveInterval = TimeSpan.FromSeconds(30));
        configureServices?.Invoke(builder.Services);
        var app = builder.Build();
        app.Services.GetRequiredService<DataDirLock>();
        app.UseWebSockets();
        Metrics.MetricsHttpHandler.UseExporter(app, options);
        app.Run(app.Services.GetRequiredService<HttpEndpoint>().InvokeAsync);
        var registry = app.Services.GetRequiredService<ModuleRegistry>();
        app.Services.GetRequiredService<AccountService>().SetDeletedHandlers(registry.AccountDeleted);
        app.Services.GetRequiredService<CertificateManager>().LoadAll();
        return app;
    }

    private static void ListenOn(KestrelServerOptions kestrel, XmppServerOptions options, int port, Action<ListenOptions> configure)
    {
        if (options.ListenAddresses.Count == 0 || options.ListenAddresses.Contains("any"))
        {
            kestrel.ListenAnyIP(port, configure); // IPv6 any with IPv4 mapped, or IPv4 alone where IPv6 is off
            return;
        }
        foreach (var address in options.ListenAddresses)
            kestrel.Listen(IPAddress.Parse(address), port, configure);
    }

    // One line when a store starts holding writes because the disk is full and one when it writes again: an outage
    // is logged once, not once per write (the retries run every second).
    private static IStorage WithStallLog(IStorage storage, ILogger log)
    {
        if (storage.Stall is null) return storage;
        storage.Stall.Began += (store, error) => log.LogError(
            "Storage {Store}: the disk is full ({Error}); writes are held and retried, acknowledgements withheld and new work that needs the disk refused (resource-constraint, wait) until space is freed",
            store, error.Message);
        storage.Stall.Repaired += note => log.LogWarning("{Note}", note);
        storage.Stall.Ended += store => log.LogWarning("Storage {Store}: writing again; the held writes are stored", store);
        return storage;
    }

    public static void AddServices(IServiceCollection services, XmppServerOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(new XmppServerOptionsAccessor(options));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new ServedDomains(options.Domains));
        services.AddSingleton(sp => WithStallLog(StorageFactory.Open(options, sp.GetService<ILoggerFactory>()),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Xmpp.Storage")));
        services.AddSingleton(sp => new CertificateManager(
            Path.GetFullPath(options.CertDir), sp.GetRequiredService<ServedDomains>().All,
            sp.GetRequiredService<ILogger<CertificateManager>>(), options.GenerateSelfSignedCertificates));
        services.AddSingleton<CertificateReloadService>();
        services.AddHostedService(sp => sp.GetRequiredService<CertificateReloadService>());
        Tls.Acme.AcmeServices.Add(services, options);
        services.AddSingleton<AccountService>();
        services.AddSingleton<AuthThrottle>();
        services.AddSingleton<FastTokenService>();
        // Cluster mode replaces the in-process directory with one that also holds the other nodes' sessions; a
        // single node registers (and so loads) nothing of it.
        if (options.Cluster.Enabled) Cluster.ClusterServices.Add(services, options);
        else
        {
            services.AddSingleton<ISessionDirectory, SessionDirectory>();
            services.AddSingleton<Caching.ICacheInvalidation, Caching.LocalCacheInvalidation>();
        }
        services.AddSingleton<IRouter, Router>();
        if (options.S2s.Enabled)
        {
            services.AddSingleton<S2sServices>();
            services.AddSingleton<S2sLinkManager>();
            services.AddSingleton<IRemoteLinks>(sp => sp.GetRequiredService<S2sLinkManager>());
            services.AddHostedService(sp => sp.GetRequiredService<S2sLinkManager>());
        }
        else services.AddSingleton<IRemoteLinks, BouncingRemoteLinks>();
        services.AddSingleton<ComponentLinks>();
        services.AddHostedService(sp => sp.GetRequiredService<ComponentLinks>());
        services.AddSingleton<ConnectionTracker>();
        services.AddSingleton<Limits.StanzaRateLimits>();
        services.AddSingleton<Limits.BlockList>().AddHostedService(sp => sp.GetRequiredService<Limits.BlockList>());
        services.AddSingleton<StreamManagementService>();
        services.AddSingleton<StreamServices>();
        // Two phases: the router (which the modules use) gets the table, filled when the registry is built.
        services.AddSingleton<ModuleTable>();
        services.AddSingleton(sp =>
        {
            var registry = new ModuleRegistry(sp.GetServices<IXmppModule>());
            sp.GetRequiredService<ModuleTable>().Attach(registry);
            return registry;
        });
        services.AddSingleton<HttpEndpoint>();
        Metrics.MetricsHttpHandler.AddServices(services, options);
        services.AddSingleton<IHttpHandler, Metrics.HealthHttpHandler>();
        services.AddSingleton<IHttpHandler, Metrics.HealthHttpHandler.Ready>();
        WebClientServices.Add(services);
        ModuleCatalog.AddModules(services);
        services.AddHostedService<ConnectionSweeper>();
        // Before ShutdownService: the host stops services in reverse order, so the client ports accept through the drain.
        services.AddSingleton<C2sListener>();
        services.AddHostedService(sp => sp.GetRequiredService<C2sListener>());
        services.AddSingleton<ShutdownService>();
        services.AddHostedService(sp => sp.GetRequiredService<ShutdownService>());
        services.AddSingleton<Metrics.IReadinessCheck>(sp => sp.GetRequiredService<ShutdownService>());
        // Registered after ShutdownService so it stops first: detached sessions end while storage is still open.
        services.AddHostedService(sp => sp.GetRequiredService<StreamManagementService>());
    }
}
