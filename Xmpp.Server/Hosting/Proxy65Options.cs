namespace Xmpp.Server.Hosting;

/// The XEP-0065 SOCKS5 bytestreams proxy at SUBDOMAIN.DOMAIN, a relay for file transfers between clients that cannot
/// reach each other directly. Off unless Port is set, because clients must reach Host:Port from wherever they are.
public sealed class Proxy65Options
{
    /// TCP port of the SOCKS5 listener (7777 is usual); 0 disables the proxy and its service.
    public int Port { get; set; } = 0;

    public string Subdomain { get; set; } = "proxy";

    /// Host name or IP address clients connect to; empty means the first ListenAddresses entry, else the domain.
    public string Host { get; set; } = "";

    /// Bytestreams (pairs of connections) waiting for activation or relaying at once; further connections are refused.
    public int MaxSessions { get; set; } = 100;

    /// Relay speed per direction of one bytestream, in bytes per second; 0 = unlimited.
    public int MaxBytesPerSecond { get; set; } = 4 * 1024 * 1024;

    /// Seconds a connection may wait for its partner and the activation before it is closed.
    public int ActivationTimeoutSeconds { get; set; } = 120;
}
