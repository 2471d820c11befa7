// XEP-0199: XMPP Ping. Client-to-server pings are answered here; server-to-client pings are sent by the ConnectionSweeper.
using Xmpp.Protocol;

namespace Xmpp.Server.Modules.Ping;

[Xep("XEP-0199", "2.0.1")]
public sealed class PingModule : IXmppModule
{
    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Ping);
        module.Iq(IqTarget.Server, "ping", Ns.Ping, Pong);
        module.Iq(IqTarget.Self, "ping", Ns.Ping, Pong);
    }

    private static ValueTask Pong(IqContext c)
    {
        if (c.IsGet) c.Result();
        else c.Error(StanzaErrors.BadRequest);
        return ValueTask.CompletedTask;
    }
}
