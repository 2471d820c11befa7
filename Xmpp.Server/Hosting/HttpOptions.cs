namespace Xmpp.Server.Hosting;

/// Browser transports on the HTTPS endpoint (Xmpp:HttpPort): WebSocket (RFC 7395) and BOSH (XEP-0206).
public sealed class HttpOptions
{
    /// RFC 7395 on /xmpp-websocket.
    public bool WebSocket { get; set; } = true;

    /// XEP-0206 on /http-bind.
    public bool Bosh { get; set; } = true;

    /// Origins (scheme://host[:port]) allowed to open WebSocket and BOSH sessions; empty allows every origin. Logging in
    /// needs the account's password (SASL), never a cookie, so a foreign page gains nothing it could not do itself.
    public List<string> AllowedOrigins { get; set; } = [];

    /// Public base URL clients use (behind a reverse proxy, e.g. https://xmpp.example.org); empty means
    /// https://DOMAIN:HttpPort. Announced in /.well-known/host-meta (XEP-0156).
    public string PublicUrl { get; set; } = "";

    /// Longest a BOSH request is held waiting for data (XEP-0124 'wait'); a client may ask for less.
    public int BoshMaxWaitSeconds { get; set; } = 60;

    /// A BOSH session with no request for this long is ended (XEP-0124 'inactivity').
    public int BoshInactivitySeconds { get; set; } = 60;

    /// Upper bound on concurrent BOSH sessions (each holds a stream).
    public int BoshMaxSessions { get; set; } = 10000;

    /// Seconds a client may take to send a request's headers (a slowloris holds connections by sending them slowly).
    public int RequestHeadersTimeoutSeconds { get; set; } = 30;

    /// Slowest request body accepted, in bytes per second after a 5-second grace; a slower upload is aborted (408).
    public int MinRequestBodyBytesPerSecond { get; set; } = 240;

    /// Seconds an idle keep-alive connection stays open between requests.
    public int KeepAliveTimeoutSeconds { get; set; } = 130;

    /// Concurrent HTTPS connections one remote address may hold; a connection above it is closed as soon as it is
    /// accepted, before the TLS handshake. 0 = no limit.
    public int MaxConnectionsPerIp { get; set; } = 64;

    /// Loopback addresses are not counted: there every connection is a local reverse proxy's.
    public bool ExemptLoopback { get; set; } = true;
}
