namespace Xmpp.Server.Metrics;

/// Xmpp:Metrics: the Prometheus endpoint at /metrics on the HTTPS port.
public sealed class MetricsOptions
{
    public bool Enabled { get; set; } = true;

    /// When set, any address may scrape with "Authorization: Bearer TOKEN"; when empty, only loopback addresses may.
    public string? Token { get; set; }
}
