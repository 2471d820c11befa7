using Microsoft.AspNetCore.Connections;

namespace Xmpp.Server.Streams;

/// Client connections on the direct TLS port (XEP-0368): TLS first, with ALPN xmpp-client.
public sealed class DirectTlsConnectionHandler(StreamServices services) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new XmppStream(connection, services, directTls: true).RunAsync();
}
