namespace Xmpp.Server.Hosting;

/// STUN and TURN servers announced to clients (XEP-0215), for audio and video calls.
public sealed class ExternalServicesOptions
{
    public List<ExternalServiceOptions> Services { get; set; } = [];

    /// How long TURN REST API credentials stay valid.
    public int CredentialLifetimeSeconds { get; set; } = 86400;
}

public sealed class ExternalServiceOptions
{
    /// Service type from the XEP-0215 registry: stun, turn, turns.
    public string Type { get; set; } = "";

    public string Host { get; set; } = "";
    public int Port { get; set; }

    /// udp or tcp.
    public string Transport { get; set; } = "udp";

    /// A friendly name shown by some clients; optional.
    public string Name { get; set; } = "";

    /// The TURN server's shared secret (coturn static-auth-secret): time-limited credentials are made from it
    /// per user with the TURN REST API convention. Empty for services that need no credentials.
    public string Secret { get; set; } = "";
}
