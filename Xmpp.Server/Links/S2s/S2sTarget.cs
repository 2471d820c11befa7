namespace Xmpp.Server.Links.S2s;

/// One place to try for a domain: a host and port, with TLS from the first byte (XEP-0368) or STARTTLS, and where it
/// came from (for log lines).
internal sealed record S2sTarget(string Host, int Port, bool DirectTls, string Source)
{
    public override string ToString() => $"{Host}:{Port} ({(DirectTls ? "direct TLS" : "STARTTLS")}, {Source})";
}
