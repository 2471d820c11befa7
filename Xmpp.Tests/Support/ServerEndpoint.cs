namespace Xmpp.Tests.Support;

/// Where a test client connects: the in-process TestServer or an xmppd process.
public sealed record ServerEndpoint(string Host, int C2sPort, int C2sTlsPort, string Domain = "localhost");
