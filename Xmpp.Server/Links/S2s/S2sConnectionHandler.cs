using Microsoft.AspNetCore.Connections;

namespace Xmpp.Server.Links.S2s;

/// Other servers' connections on the s2s port (STARTTLS, RFC 6120 §5).
public sealed class S2sConnectionHandler(S2sServices services, S2sLinkManager links) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        new InboundS2sStream(services, links, connection, directTls: false).RunAsync();
}
