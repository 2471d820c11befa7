using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules;
using Xmpp.Server.Routing;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Links.S2s;

/// What every server link needs, gathered once.
public sealed class S2sServices
{
    private readonly IServiceProvider _services;
    private IRouter? _router;
    private ModuleRegistry? _modules;

    public S2sServices(XmppServerOptions options, ServedDomains domains, CertificateManager certificates, IServiceProvider services,
        ILoggerFactory loggers)
    {
        _services = services;
        Options = options.S2s;
        TlsHandshakeTimeout = TimeSpan.FromSeconds(options.Limits.TlsHandshakeTimeoutSeconds);
        Domains = domains;
        Certificates = certificates;
        Logger = loggers.CreateLogger("Xmpp.Server.S2s");
        Keys = new DialbackKeys(Options.DialbackSecret);
        PeerCertificates = new PeerCertificates(Options);
        Resolver = new S2sResolver(Options, Logger);
        DomainStanzaRate = Options.StanzasPerSecondPerDomain > 0
            ? new Limits.RateLimiter(Options.StanzasPerSecondPerDomain, Options.StanzaBurstPerDomain, services.GetService<TimeProvider>())
            : null;
        ParserLimits = new ParserLimits
        {
            MaxStanzaBytes = Options.MaxStanzaBytes,
            MaxDepth = options.Limits.MaxDepth,
            MaxAttributes = options.Limits.MaxAttributes,
        };
    }

    public S2sOptions Options { get; }

    /// Xmpp:Limits:TlsHandshakeTimeoutSeconds, for inbound links as for clients.
    public TimeSpan TlsHandshakeTimeout { get; }
    public ServedDomains Domains { get; }
    public CertificateManager Certificates { get; }
    public ILogger Logger { get; }
    internal DialbackKeys Keys { get; }
    internal PeerCertificates PeerCertificates { get; }
    internal S2sResolver Resolver { get; }
    internal ParserLimits ParserLimits { get; }

    /// Xmpp:S2s:StanzasPerSecondPerDomain: one bucket per authenticated remote domain, shared by all its inbound links.
    internal Limits.RateLimiter? DomainStanzaRate { get; }

    private Metrics.ServerMetrics? _metrics;
    public Metrics.ServerMetrics? Metrics => _metrics ??= _services.GetService<Metrics.ServerMetrics>();

    // The router and the module registry depend (through the links) on this, so they are resolved on first use.
    public IRouter Router => _router ??= _services.GetRequiredService<IRouter>();
    private ModuleRegistry Modules => _modules ??= _services.GetRequiredService<ModuleRegistry>();

    /// A domain of ours: a served domain or a hosted service's (conference.DOMAIN, upload.DOMAIN).
    public bool Serves(string domain) => Domains.Contains(domain) || Modules.FindService(domain) is not null;

    /// Policy: blocked domains, and in allow-list mode everything not allowed; each list covers subdomains too.
    public string? Refusal(string remote)
    {
        if (_services.GetRequiredService<Limits.BlockList>().IsDomainBlocked(remote)) return $"{remote} is blocked by this server's policy";
        if (Options.AllowListOnly && !Covers(Options.AllowedDomains, remote))
            return $"{remote} is not on this server's list of allowed domains";
        return null;
    }

    public bool RequiresVerifiedCertificate(string remote) =>
        Options.RequireVerifiedCertificates.Contains("*") || Covers(Options.RequireVerifiedCertificates, remote);

    private static bool Covers(List<string> list, string domain)
    {
        foreach (var entry in list)
        {
            var d = entry.Trim().TrimEnd('.').ToLowerInvariant();
            if (d.Length == 0) continue;
            if (domain == d || domain.EndsWith("." + d, StringComparison.Ordinal)) return true;
        }
        return false;
    }
}
