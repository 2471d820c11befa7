using Microsoft.Extensions.DependencyInjection;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Links;

/// Federation switched off: every stanza for another domain is answered with remote-server-not-found.
public sealed class BouncingRemoteLinks(IServiceProvider services) : IRemoteLinks
{
    // The router depends on the links, so it is resolved on first use, not injected.
    private IRouter? _router;

    public ValueTask SendAsync(Element stanza, Jid from, Jid to)
    {
        _router ??= services.GetRequiredService<IRouter>();
        return _router.BounceAsync(stanza, StanzaErrors.RemoteServerNotFound);
    }
}
