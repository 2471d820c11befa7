using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Links.Components;

/// The XEP-0114 component links: at most one connected stream per configured component domain. The router hands
/// every stanza for a component domain (the domain and any JID at it) here, through the service ComponentsModule
/// declares; a connected component gets it, otherwise it is answered with service-unavailable.
public sealed class ComponentLinks(XmppServerOptions options, ServedDomains domains, IServiceProvider services, ILoggerFactory loggers)
    : IHostedService
{
    private readonly ConcurrentDictionary<string, ComponentStream> _connected = new(StringComparer.Ordinal);
    private IRouter? _router;
    private volatile bool _stopping;

    public ComponentOptions Options { get; } = options.Components;
    public ILogger Logger { get; } = loggers.CreateLogger("Xmpp.Server.Components");
    internal int MaxSendQueue { get; } = options.Limits.MaxSendQueue;
    internal ParserLimits ParserLimits { get; } = new()
    {
        MaxStanzaBytes = options.Components.MaxStanzaBytes,
        MaxDepth = options.Limits.MaxDepth,
        MaxAttributes = options.Limits.MaxAttributes,
    };

    // The router depends on the modules, and so on this, so it is resolved on first use.
    internal IRouter Router => _router ??= services.GetRequiredService<IRouter>();

    /// The configured component domains (lower-case, as JIDs carry them), with the served domain each is listed under.
    public IEnumerable<(string Domain, string Parent, string Name)> Configured =>
        Options.Enabled
            ? Options.Domains.Select(d =>
            {
                var domain = d.Key.Trim().TrimEnd('.').ToLowerInvariant();
                var parent = domains.All.FirstOrDefault(s => domain.EndsWith("." + s, StringComparison.Ordinal)) ?? domains.Default;
                return (domain, parent, d.Value.Name.Length > 0 ? d.Value.Name : domain);
            })
            : [];

    internal string? SecretFor(string domain) =>
        Options.Enabled && Options.Domains.FirstOrDefault(d => string.Equals(d.Key.Trim().TrimEnd('.'), domain, StringComparison.OrdinalIgnoreCase))
            .Value is { } c ? c.Secret : null;

    public bool IsConnected(string domain) => _connected.ContainsKey(domain);

    internal bool Stopping => _stopping;

    /// Claims the domain for a stream that completed its handshake; false when another stream holds it.
    internal bool TryAttach(string domain, ComponentStream stream) => _connected.TryAdd(domain, stream);

    internal void Detach(string domain, ComponentStream stream) =>
        _connected.TryRemove(new KeyValuePair<string, ComponentStream>(domain, stream));

    /// The router's hand-off for a stanza to the component domain or a JID at it.
    public ValueTask DeliverAsync(StanzaContext c)
    {
        var domain = c.To!.Domain;
        if (_connected.TryGetValue(domain, out var stream))
        {
            if (stream.Send(c.Stanza)) return ValueTask.CompletedTask;
            if (!stream.IsClosed) return BounceAsync(c.Stanza, StanzaErrors.ResourceConstraint, $"The component {domain} is not keeping up");
        }
        // The domain is ours, so the server was found; the service behind it is down for now (RFC 6120 §8.3.3.19).
        return BounceAsync(c.Stanza, StanzaErrors.ServiceUnavailable, $"The component {domain} is not connected");
    }

    /// Presence and IQ answers nobody can take are dropped (RFC 6121 §4.6, RFC 6120 §8.2.3); the rest get the error.
    internal ValueTask BounceAsync(Element stanza, string condition, string text)
    {
        if (stanza.Name == "presence" || stanza.Name == "iq" && stanza.Attr("type") is "result" or "error") return ValueTask.CompletedTask;
        return Router.BounceAsync(stanza, condition, text);
    }

    private readonly CancellationTokenSource _stop = new();
    private Task? _sweeper;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Components are told first, before Kestrel stops and waits for its connections to end.
        services.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(CloseAll);
        if (Options.Enabled && Options.PingIntervalSeconds > 0) _sweeper = Task.Run(() => PingLoopAsync(_stop.Token));
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        CloseAll();
        if (_sweeper is not null) { try { await _sweeper; } catch (OperationCanceledException) { } }
    }

    private void CloseAll()
    {
        _stopping = true;
        try { _stop.Cancel(); } catch (ObjectDisposedException) { }
        foreach (var stream in _connected.Values) stream.Close(StreamErrors.SystemShutdown, "The server is stopping");
    }

    /// XEP-0199 pings to components that have been silent for PingIntervalSeconds, one at a time per component.
    private async Task PingLoopAsync(CancellationToken ct)
    {
        var pinging = new ConcurrentDictionary<ComponentStream, byte>();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Clamp(Options.PingIntervalSeconds / 4.0, 0.25, 15)));
        while (await timer.WaitForNextTickAsync(ct))
        {
            foreach (var (domain, stream) in _connected)
            {
                if (stream.IsClosed || stream.MillisecondsSinceRead < Options.PingIntervalSeconds * 1000L || !pinging.TryAdd(stream, 0)) continue;
                _ = Task.Run(async () =>
                {
                    try
                    {
                        var ping = new Element("iq", Ns.Client).SetAttr("type", "get").SetAttr("from", domains.Default).SetAttr("to", domain)
                            .Add(new Element("ping", Ns.Ping));
                        var answer = await Router.RequestAsync(ping, TimeSpan.FromSeconds(Options.PingTimeoutSeconds));
                        if (answer is null && !stream.IsClosed)
                        {
                            Logger.LogWarning("component {Domain}: no answer to a ping within {Seconds} s; closing its link", domain, Options.PingTimeoutSeconds);
                            stream.Close(StreamErrors.ConnectionTimeout, "No answer to a ping");
                        }
                    }
                    catch (Exception ex) { Logger.LogDebug(ex, "component {Domain}: ping failed", domain); }
                    finally { pinging.TryRemove(stream, out _); }
                });
            }
        }
    }
}
