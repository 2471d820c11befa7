using Microsoft.Extensions.Logging;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams.StreamManagement;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Streams;

/// The singletons every stream needs, gathered so a connection costs one reference, not ten.
public sealed class StreamServices(
    XmppServerOptionsAccessor options,
    ServedDomains domains,
    CertificateManager certificates,
    AccountService accounts,
    AuthThrottle throttle,
    FastTokenService fastTokens,
    IRouter router,
    ISessionDirectory directory,
    ModuleRegistry modules,
    ConnectionTracker connections,
    TimeProvider time,
    StreamManagementService streamManagement,
    Xmpp.Storage.IStorage storage,
    Metrics.ServerMetrics metrics,
    Limits.StanzaRateLimits rateLimits,
    ILoggerFactory loggerFactory)
{
    public XmppServerOptions Options { get; } = options.Value;
    public ServedDomains Domains { get; } = domains;
    public CertificateManager Certificates { get; } = certificates;
    public AccountService Accounts { get; } = accounts;
    public AuthThrottle Throttle { get; } = throttle;
    public FastTokenService FastTokens { get; } = fastTokens;
    public IRouter Router { get; } = router;
    public ISessionDirectory Directory { get; } = directory;
    public ModuleRegistry Modules { get; } = modules;
    public ConnectionTracker Connections { get; } = connections;
    public TimeProvider Time { get; } = time;
    public StreamManagementService StreamManagement { get; } = streamManagement;
    public Xmpp.Storage.IStorage Storage { get; } = storage;
    public Metrics.ServerMetrics Metrics { get; } = metrics;
    public Limits.StanzaRateLimits RateLimits { get; } = rateLimits;
    public ILogger Logger { get; } = loggerFactory.CreateLogger<XmppStream>();

    public ParserLimits ParserLimits { get; } = new()
    {
        MaxStanzaBytes = options.Value.Limits.MaxStanzaBytes,
        MaxDepth = options.Value.Limits.MaxDepth,
        MaxAttributes = options.Value.Limits.MaxAttributes,
    };
}
