using System.Net;

namespace Xmpp.Bench;

/// The server under test: loopback address, STARTTLS and direct TLS ports, XMPP domain; whether clients enable stream
/// management (XEP-0198) after binding, as phone clients do.
public sealed record Target(IPAddress Address, int Port, int TlsPort, string Domain, bool DirectTls, bool StreamManagement = false)
{
    public string Jid(string user) => $"{user}@{Domain}";
}
