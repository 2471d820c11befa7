using System.Net;

namespace Xmpp.Tests.Support;

/// Where a test client connects: the in-process TestServer or an xmppd process. LocalAddress binds the client's socket
/// to another loopback address (127.0.0.7) to look like a different client; Preamble is written before anything else
/// (a PROXY protocol header, as a load balancer would send).
public sealed record ServerEndpoint(string Host, int C2sPort, int C2sTlsPort, string Domain = "localhost", IPAddress? LocalAddress = null,
    byte[]? Preamble = null);
