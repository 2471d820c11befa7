using Microsoft.AspNetCore.Connections;

namespace Xmpp.Server.Links.S2s;

/// Other servers' connections on the direct TLS port (XEP-0368, ALPN xmpp-server).
public sealed class S2sDirectTlsConnectionHandler(S2sServices services, S2sLinkManager links) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new InboundS2sStream(services, links, connection, directTls: true).RunAsync();
}
