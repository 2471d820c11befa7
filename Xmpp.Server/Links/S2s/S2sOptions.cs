namespace Xmpp.Server.Links.S2s;

/// Server-to-server federation (RFC 6120 with RFC 7590 TLS, XEP-0178, XEP-0220, XEP-0368), section Xmpp:S2s.
public sealed class S2sOptions
{
    /// Off: stanzas for other domains are answered with remote-server-not-found and no listener is opened.
    public bool Enabled { get; set; } = true;

    /// STARTTLS port for other servers (RFC 6120 §14.7, _xmpp-server._tcp); 0 = no inbound listener.
    public int Port { get; set; } = 5269;

    /// Direct TLS port for other servers (XEP-0368, _xmpps-server._tcp, ALPN xmpp-server); 0 = off.
    public int DirectTlsPort { get; set; } = 0;

    /// Static routes, domain → "host:port" (STARTTLS) or "tls://host:port" (direct TLS), used instead of DNS:
    /// private federations and tests.
    public Dictionary<string, string> Peers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// Domains (and their subdomains) that must present a certificate that verifies; "*" = every domain. Others may
    /// fall back to dialback when their certificate does not verify.
    public List<string> RequireVerifiedCertificates { get; set; } = [];

    /// Server Dialback (XEP-0220) as the fallback when a peer's certificate does not verify.
    public bool AllowDialback { get; set; } = true;

    /// Bidirectional links (XEP-0288): a peer that asks may carry our stanzas back over the link it opened, and we ask a
    /// peer whose certificate proves its domain to do the same, so one TCP connection serves both directions.
    public bool Bidi { get; set; } = false;

    /// Secret for dialback keys (XEP-0185); empty = a random one per start (enough for one node).
    public string DialbackSecret { get; set; } = "";

    /// PEM file of extra trusted CA certificates for peers' certificates; empty = the system trust store only.
    public string TrustedCaFile { get; set; } = "";

    /// Domains (and their subdomains) never federated with, in either direction.
    public List<string> BlockedDomains { get; set; } = [];

    /// Allow-list mode for private servers: only these domains (and their subdomains) are federated with.
    public bool AllowListOnly { get; set; } = false;
    public List<string> AllowedDomains { get; set; } = [];

    /// Largest stanza in bytes on a server link; larger ones end the stream with policy-violation.
    public int MaxStanzaBytes { get; set; } = 256 * 1024;

    /// Inbound streams one remote domain may have authenticated at once; more are refused with policy-violation.
    public int MaxLinksPerDomain { get; set; } = 8;

    /// Inbound server connections from one IP address at once (authenticated or not); more are refused with
    /// policy-violation as soon as they connect.
    public int MaxConnectionsPerIp { get; set; } = 32;

    /// Stanzas per second one remote domain may send us over all its inbound links together (messages, presence and IQ
    /// requests; never IQ results or errors), and the burst above it. Over it, messages and IQ requests are answered
    /// with a policy-violation error of type "wait" and presence is dropped. 0 = no limit.
    public double StanzasPerSecondPerDomain { get; set; } = 200;
    public int StanzaBurstPerDomain { get; set; } = 2000;

    /// Sustained read rate per inbound server connection in bytes per second (a token bucket, as for clients in
    /// Xmpp:Limits); a peer above it is slowed down, not dropped. 0 = no limit.
    public int ReadBytesPerSecond { get; set; } = 1024 * 1024;

    /// Burst allowed above the sustained rate, in bytes; at least MaxStanzaBytes.
    public int ReadBurstBytes { get; set; } = 4 * 1024 * 1024;

    /// Seconds without stanzas after which a link is closed; it reopens on demand.
    public int IdleTimeoutSeconds { get; set; } = 600;

    /// Seconds for one TCP connect attempt; the next target is tried after it.
    public int ConnectTimeoutSeconds { get; set; } = 10;

    /// Seconds for setting a link up (all targets, TLS, authentication); waiting stanzas then get remote-server-timeout.
    /// Inbound streams not authenticated within this time are closed with connection-timeout (slow or silent peers).
    public int SetupTimeoutSeconds { get; set; } = 60;

    /// Stanzas waiting on one outbound link (while it is set up, or when the peer reads slowly); more get
    /// resource-constraint.
    public int MaxQueuedStanzas { get; set; } = 1000;

    /// Seconds of silence on an outbound link after which a XEP-0199 ping goes out; 0 = no pings.
    public int PingIntervalSeconds { get; set; } = 120;

    /// Seconds to wait for the ping's answer before the link counts as dead and is closed.
    public int PingTimeoutSeconds { get; set; } = 30;

    /// DNS servers for SRV and address look-ups ("ip" or "ip:port"), used by the links and by `xmppd check`; empty =
    /// the system's resolvers (/etc/resolv.conf).
    public List<string> DnsServers { get; set; } = [];

    /// Addresses other servers and clients reach this server at, when they are not on a local interface (behind
    /// NAT): `xmppd check` accepts SRV targets that resolve to them.
    public List<string> PublicAddresses { get; set; } = [];
}
