using Microsoft.AspNetCore.Connections;

namespace Xmpp.Server.Links.Components;

/// Components' connections on the component port (XEP-0114).
public sealed class ComponentConnectionHandler(ComponentLinks links) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) => new ComponentStream(links, connection).RunAsync();
}
