using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Muc;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams;
using Xmpp.Storage;

namespace Xmpp.Server.Cli;

/// What admin commands act on: the running server's own services (through the admin socket), or the store opened
/// directly by the CLI under the data folder's lock when no server runs (Live is null then).
public sealed class AdminTarget(IStorage storage, AccountService accounts, XmppServerOptions options, Limits.BlockList blocks,
    Modules.Blocking.AbuseReports reports, LiveServer? live)
{
    public IStorage Storage { get; } = storage;
    public AccountService Accounts { get; } = accounts;
    public XmppServerOptions Options { get; } = options;
    public ServedDomains Domains { get; } = new(options.Domains);
    /// The running server's list (changes take effect at once), or one loaded from the stopped server's store.
    public Limits.BlockList Blocks { get; } = blocks;
    /// XEP-0377 reports kept for the admins (the running server's own instance, whose count of kept reports a clear resets).
    public Modules.Blocking.AbuseReports Reports { get; } = reports;
    public LiveServer? Live { get; } = live;
}

/// The parts only a running server has.
public sealed record LiveServer(ISessionDirectory Sessions, ConnectionTracker Connections, MucModule Muc, DateTimeOffset StartedAt,
    TimeProvider Time);
