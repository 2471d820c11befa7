using System.Net;

namespace Xmpp.Bench;

/// The server under test: loopback address, STARTTLS and direct TLS ports, XMPP domain; whether clients enable stream
/// management (XEP-0198) after binding, as phone clients do; whether each login is a messenger's full session start
/// (see BenchClient.Messenger.cs) rather than the minimal TLS, SCRAM, bind and presence; whether a reconnecting client
/// offers its earlier TLS session (.NET's default, as a phone does).
public sealed record Target(IPAddress Address, int Port, int TlsPort, string Domain, bool DirectTls, bool StreamManagement = false,
    bool Messenger = false, bool TlsResume = true)
{
    public string Jid(string user) => $"{user}@{Domain}";
}
