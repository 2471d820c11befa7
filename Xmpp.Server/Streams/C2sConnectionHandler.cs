using Microsoft.AspNetCore.Connections;

namespace Xmpp.Server.Streams;

/// Client connections on the STARTTLS port (RFC 6120 §5).
public sealed class C2sConnectionHandler(StreamServices services) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new XmppStream(connection, services, directTls: false).RunAsync();
}
