using Xmpp.Server.Links.S2s;

namespace Xmpp.Server.Hosting;

/// Every setting of the server, bound from config/xmppd.json, XMPP_ environment variables and the command line.
/// Defaults are the embedded single-binary setup: domain localhost, LiteDB under data/, self-signed certificates.
public sealed class XmppServerOptions
{
    public const string Section = "Xmpp";

    /// Served domains; the first is the default for SNI and admin commands.
    public List<string> Domains { get; set; } = [];

    /// Bare JIDs of the server's administrators: they run the XEP-0133 commands and send announcements.
    public List<string> Admins { get; set; } = [];

    public string DataDir { get; set; } = "data";

    /// Where accounts, rosters, archives and the rest are kept: embedded (default) or PostgreSQL.
    public StorageOptions Storage { get; set; } = new();
    public string CertDir { get; set; } = "certs";

    /// STARTTLS port (RFC 6120 §5); 0 disables the listener.
    public int C2sPort { get; set; } = 5222;

    /// Direct TLS port (XEP-0368); 0 disables the listener.
    public int C2sTlsPort { get; set; } = 5223;

    /// HTTPS port for HTTP services (XEP-0363 upload; later WebSocket, BOSH); 0 disables it and the services on it.
    public int HttpPort { get; set; } = 5281;

    /// Addresses to listen on; "any" binds IPv4 and IPv6 on all interfaces.
    public List<string> ListenAddresses { get; set; } = [];

    /// listen(2) backlog of every listener: connections the kernel holds before they are accepted. Kestrel's 512
    /// dropped bursts of reconnecting clients; the kernel caps the value at net.core.somaxconn.
    public int ListenBacklog { get; set; } = 4096;

    /// PROXY protocol headers from trusted load balancers on the client listeners (off unless proxies are listed).
    public ProxyProtocol.ProxyProtocolOptions ProxyProtocol { get; set; } = new();

    /// Seconds a graceful stop (SIGTERM) first spends draining: GET /ready answers 503 while the listeners still accept
    /// and open streams stay, so a load balancer's health check takes the node out before its clients are closed and
    /// reconnect elsewhere. 0 (the default) closes at once; behind HAProxy use at least its inter × fall.
    public int DrainSeconds { get; set; }

    /// Refuse SASL and everything after it until STARTTLS has completed (RFC 6120 §5.3.1 "required").
    public bool RequireEncryption { get; set; } = true;

    /// Generate a self-signed certificate for a domain that has none (logged as a warning).
    public bool GenerateSelfSignedCertificates { get; set; } = true;

    /// How often the certificate folder is checked for changed files even when no change was notified (symlinked
    /// folders, network file systems); 0 = only on notifications and SIGHUP.
    public int CertificateRescanSeconds { get; set; } = 60;

    public Tls.Acme.AcmeOptions Acme { get; set; } = new();

    public LimitOptions Limits { get; set; } = new();
    public Limits.RateLimitOptions RateLimits { get; set; } = new();
    public Limits.BlockListOptions Blocked { get; set; } = new();
    public AuthOptions Auth { get; set; } = new();
    public RegistrationOptions Registration { get; set; } = new();
    public OfflineOptions Offline { get; set; } = new();
    public MamOptions Mam { get; set; } = new();
    public PingOptions Ping { get; set; } = new();
    public StreamManagementOptions StreamManagement { get; set; } = new();
    public PepOptions Pep { get; set; } = new();
    public MucOptions Muc { get; set; } = new();
    public UploadOptions Upload { get; set; } = new();
    public ExternalServicesOptions ExternalServices { get; set; } = new();
    public Proxy65Options Proxy65 { get; set; } = new();
    public HttpOptions Http { get; set; } = new();
    public Modules.Disco.ContactAddressesOptions ContactAddresses { get; set; } = new();
    public Modules.Requests.MessageRequestsOptions MessageRequests { get; set; } = new();
    public Metrics.MetricsOptions Metrics { get; set; } = new();
    public Modules.Invites.InvitesOptions Invites { get; set; } = new();
    public S2sOptions S2s { get; set; } = new();
    public Links.Components.ComponentOptions Components { get; set; } = new();
    public Modules.Push.PushOptions Push { get; set; } = new();
    public Cluster.ClusterOptions Cluster { get; set; } = new();
}

public sealed class LimitOptions
{
    /// Largest stanza in bytes (announced with XEP-0478); larger ones end the stream with policy-violation.
    public int MaxStanzaBytes { get; set; } = 256 * 1024;
    public int MaxDepth { get; set; } = 48;
    public int MaxAttributes { get; set; } = 64;

    /// Sustained read rate per connection in bytes per second; a peer above it is slowed down, not dropped.
    public int ReadBytesPerSecond { get; set; } = 256 * 1024;

    /// Burst allowed above the sustained rate, in bytes.
    public int ReadBurstBytes { get; set; } = 1024 * 1024;

    public int MaxConnectionsPerIp { get; set; } = 64;

    /// Seconds a stream may take from connect to bound resource before it is closed with connection-timeout.
    public int UnauthenticatedTimeoutSeconds { get; set; } = 60;

    /// Stanzas queued for a client that does not read before it is disconnected.
    public int MaxSendQueue { get; set; } = 10_000;

    public int MaxResourcesPerAccount { get; set; } = 32;

    /// Items one roster may hold, pending requests from strangers included; a further new contact is refused with
    /// not-allowed (roster set, subscription request) and an incoming request from a stranger with the same error.
    public int MaxRosterItems { get; set; } = 5000;

    /// Seconds a client or server may take for its TLS handshake (STARTTLS or direct TLS) before it is disconnected.
    public int TlsHandshakeTimeoutSeconds { get; set; } = 15;
}

public sealed class AuthOptions
{
    /// PBKDF2 iterations for new SCRAM credentials.
    public int ScramIterations { get; set; } = 4096;

    /// Offer PLAIN (only ever over TLS).
    public bool AllowPlain { get; set; } = true;

    /// Failed attempts within the window that are answered normally; after that each attempt waits longer.
    public int FreeFailures { get; set; } = 5;
    public int FailureWindowSeconds { get; set; } = 300;

    /// First back-off after the free failures; doubles with each further failure.
    public double BackoffSeconds { get; set; } = 2;
    public double MaxBackoffSeconds { get; set; } = 60;

    /// Failed SASL attempts on one stream before it is closed.
    public int MaxAttemptsPerStream { get; set; } = 5;

    /// Lifetime of a XEP-0484 FAST token; a token used in its second half is replaced by a fresh one.
    public int FastTokenDays { get; set; } = 14;
}

public sealed class RegistrationOptions
{
    /// In-band registration (XEP-0077) of new accounts; password change is always allowed to a logged-in user.
    public bool AllowRegistration { get; set; } = false;

    /// Minimum seconds between two registrations from one IP address.
    public int MinSecondsBetweenPerIp { get; set; } = 300;
    public int MinPasswordLength { get; set; } = 8;
}

public sealed class OfflineOptions
{
    /// Messages spooled per account; further messages get resource-constraint.
    public int MaxMessagesPerAccount { get; set; } = 1000;
}

public sealed class MamOptions
{
    /// Most archived messages sent for one query (XEP-0313 §4.1.4 lets the server limit a page); also the page size
    /// when the query gives no RSM max.
    public int MaxPageSize { get; set; } = 250;

    /// Most ids one query may name in the XEP-0313 'ids' field.
    public int MaxIds { get; set; } = 250;

    /// What is archived for an account that never set preferences (XEP-0441): always, roster or never.
    public string DefaultMode { get; set; } = "always";
}

public sealed class PingOptions
{
    /// Seconds of silence after which the server pings a client (XEP-0199); 0 disables.
    public int IdleSeconds { get; set; } = 240;

    /// Seconds to wait for the pong (or any traffic) before the connection counts as dead.
    public int TimeoutSeconds { get; set; } = 60;

    /// Seconds between whitespace keepalives sent on otherwise idle streams; 0 disables.
    public int WhitespaceKeepaliveSeconds { get; set; } = 0;
}

public sealed class StreamManagementOptions
{
    /// Seconds a resumable session (XEP-0198) waits for its client after the connection is lost; 0 disables resumption.
    public int ResumeTimeoutSeconds { get; set; } = 300;

    /// Stanzas sent to a client and not yet acknowledged; beyond this the session ends with policy-violation.
    public int MaxUnackedStanzas { get; set; } = 5000;

    /// The server asks a client for an ack (&lt;r/&gt;) with the first stanza after a quiet spell, then at most once per
    /// this many milliseconds unless AckRequestEveryStanzas are waiting; 0 asks whenever no request is outstanding.
    public int AckRequestIntervalMilliseconds { get; set; } = 100;

    /// Unacknowledged stanzas that make the server ask for an ack at once, whatever the interval.
    public int AckRequestEveryStanzas { get; set; } = 10;
}

public sealed class PepOptions
{
    /// What pubsub#max_items 'max' means, and the highest number of items one PEP node keeps.
    public int MaxItemsPerNode { get; set; } = 1000;

    /// PEP nodes per account; publishing to a further new node is refused with resource-constraint.
    public int MaxNodesPerAccount { get; set; } = 256;

    /// Largest item payload in bytes (serialized XML); larger publishes get not-acceptable with payload-too-big
    /// (XEP-0060 §7.1.3.4). Avatars (XEP-0084) are the largest items clients publish.
    public int MaxItemBytes { get; set; } = 192 * 1024;

    /// Total bytes (serialized item payloads) one account keeps across all its PEP nodes; a publish that would go past
    /// it is refused with resource-constraint until items are retracted or nodes deleted. 0: no total limit. The
    /// default leaves room for what clients keep there (an avatar of a few hundred KB, OMEMO bundles of every device,
    /// bookmarks of hundreds of rooms) many times over, while bounding nodes x items x item size (256 x 1000 x 192 KiB).
    public long MaxBytesPerAccount { get; set; } = 4 * 1024 * 1024;

    /// Seconds after which items of the user status node (urn:xmppd:status:0) expire.
    public int StatusItemLifetimeSeconds { get; set; } = 86400;

    /// Seconds between sweeps that remove expired items (pubsub#item_expire).
    public int ExpirySweepSeconds { get; set; } = 60;
}

public sealed class MucOptions
{
    /// Host group chat (XEP-0045) on SUBDOMAIN.DOMAIN for every served domain.
    public bool Enabled { get; set; } = true;
    public string Subdomain { get; set; } = "conference";

    /// Occupants one room admits; a room's own "max users" setting can only lower it.
    public int MaxOccupantsPerRoom { get; set; } = 500;

    /// Rooms one account may own; creating more is refused with not-allowed.
    public int MaxRoomsPerUser { get; set; } = 50;

    /// Messages kept per room for history on join; a room's "history length" setting can only lower it.
    public int MaxHistoryMessages { get; set; } = 50;

    /// Sustained groupchat and private messages per occupant per second, and the burst allowed above it;
    /// faster senders get resource-constraint.
    public double MessagesPerSecond { get; set; } = 5;
    public int MessageBurst { get; set; } = 20;

    /// Members-only rooms tell affiliated members who are not in the room about new messages, with a normal message
    /// to their bare JID (spooled offline): "none", "mentions" (their reserved nick, bare JID or a XEP-0372 mention
    /// reference) or "all".
    public string NotifyAbsentMembers { get; set; } = "mentions";

    /// At most one such notification per member and room in this many seconds; 0 = no limit.
    public int NotifyIntervalSeconds { get; set; } = 300;
}
