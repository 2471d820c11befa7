namespace Xmpp.Server.Links.Components;

/// External components (XEP-0114: bridges such as Slidge, Biboumi or Spectrum 2, push app servers), section
/// Xmpp:Components. Off by default; when on, the listener binds loopback only unless told otherwise.
public sealed class ComponentOptions
{
    /// Off: no listener is opened and no component domain is served.
    public bool Enabled { get; set; } = false;

    /// The component port (5347 by custom, as Prosody and ejabberd use).
    public int Port { get; set; } = 5347;

    /// Addresses the listener binds; empty = 127.0.0.1 only, since the handshake is a shared secret over plain TCP.
    /// (Empty rather than a default entry: configuration binding appends to a list, so a default would be doubled.)
    public List<string> ListenAddresses { get; set; } = [];

    /// The addresses to bind, loopback when none are configured.
    public IEnumerable<string> Addresses => ListenAddresses.Count > 0 ? ListenAddresses.Distinct() : ["127.0.0.1"];

    /// The component domains, each with its shared secret: "bridge.example.org": { "Secret": "..." }.
    public Dictionary<string, ComponentDomainOptions> Domains { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// Largest stanza in bytes from a component; larger ones end the stream with policy-violation.
    public int MaxStanzaBytes { get; set; } = 256 * 1024;

    /// Sustained read rate per component connection in bytes per second (0 = unlimited); a faster component is slowed
    /// down, never dropped for it. Higher than a client's: a bridge carries many users.
    public int ReadBytesPerSecond { get; set; } = 1024 * 1024;

    /// Bytes a component may send at once above the sustained rate.
    public int ReadBurstBytes { get; set; } = 4 * 1024 * 1024;

    /// Seconds a connection has to complete the handshake.
    public int HandshakeTimeoutSeconds { get; set; } = 30;

    /// Seconds of silence from a component after which the server pings it (XEP-0199); 0 = never. Any answer, even
    /// an error, shows it is alive; none within PingTimeoutSeconds closes the link, so a component whose machine
    /// vanished does not keep its domain blocked for its reconnecting successor.
    public int PingIntervalSeconds { get; set; } = 120;

    /// Seconds to wait for the answer to that ping.
    public int PingTimeoutSeconds { get; set; } = 30;
}

/// One component domain.
public sealed class ComponentDomainOptions
{
    /// The shared secret the component proves with its handshake (XEP-0114 §3).
    public string Secret { get; set; } = "";

    /// The name listed in the server's disco#items; empty = the domain.
    public string Name { get; set; } = "";
}
