using System.Net;

namespace Xmpp.Server.ProxyProtocol;

/// What a PROXY protocol header said: the client's address and port, or none (LOCAL, UNKNOWN, UNSPEC, UNIX), in which
/// case the connection keeps its real endpoints.
public readonly record struct ProxyHeader(int Version, bool Local, IPEndPoint? Source, IPEndPoint? Destination);
