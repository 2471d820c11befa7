using Microsoft.Extensions.DependencyInjection;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Links;

/// Federation switched off: messages and IQ requests for another domain are answered with remote-server-not-found;
/// presence and IQ answers are dropped, as RFC 6121 §4.6 and §8.5 treat presence nobody can take.
public sealed class BouncingRemoteLinks(IServiceProvider services) : IRemoteLinks
{
    // The router depends on the links, so it is resolved on first use, not injected.
    private IRouter? _router;

    public ValueTask SendAsync(Element stanza, Jid from, Jid to)
    {
        if (stanza.Name == "presence" || stanza.Name == "iq" && stanza.Attr("type") is "result" or "error") return ValueTask.CompletedTask;
        _router ??= services.GetRequiredService<IRouter>();
        return _router.BounceAsync(stanza, StanzaErrors.RemoteServerNotFound);
    }
}
