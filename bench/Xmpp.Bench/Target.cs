using System.Net;

namespace Xmpp.Bench;

/// The server under test: loopback address, STARTTLS and direct TLS ports, XMPP domain.
public sealed record Target(IPAddress Address, int Port, int TlsPort, string Domain, bool DirectTls)
{
    public string Jid(string user) => $"{user}@{Domain}";
}
