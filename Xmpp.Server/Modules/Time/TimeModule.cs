// XEP-0202: Entity Time.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Time;

[Xep("XEP-0202", "2.0")]
public sealed class TimeModule(TimeProvider time) : IXmppModule
{
    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Time);
        module.Iq(IqTarget.Server, "time", Ns.Time, Answer);
    }

    private ValueTask Answer(IqContext c)
    {
        if (!c.IsGet)
        {
            c.Error(StanzaErrors.BadRequest);
            return ValueTask.CompletedTask;
        }
        // The server reports UTC with offset zero: its local zone says nothing useful to a remote user.
        var now = time.GetUtcNow();
        c.Result(new Element("time", Ns.Time)
            .Add(new Element("tzo", Ns.Time).SetText("+00:00"))
            .Add(new Element("utc", Ns.Time).SetText(now.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture))));
        return ValueTask.CompletedTask;
    }
}
