// XEP-0478: Stream Limits Advertisement.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Disco;

/// Tells clients the largest stanza the server accepts and how long a quiet stream is kept,
/// so a well-behaved client never hits policy-violation by surprise.
[Xep("XEP-0478", "0.2")]
public sealed class StreamLimitsModule(XmppServerOptionsAccessor options) : IXmppModule
{
    public void Register(IModuleBuilder module)
    {
        module.StreamFeature(StreamFeatureStage.PreAuth, _ => Limits());
        module.StreamFeature(StreamFeatureStage.PostAuth, _ => Limits());
    }

    private Element Limits()
    {
        var o = options.Value;
        var limits = new Element("limits", Ns.StreamLimits)
            .Add(new Element("max-bytes", Ns.StreamLimits).SetText(o.Limits.MaxStanzaBytes.ToString(CultureInfo.InvariantCulture)));
        if (o.Ping.IdleSeconds > 0)
            limits.Add(new Element("idle-seconds", Ns.StreamLimits).SetText((o.Ping.IdleSeconds + o.Ping.TimeoutSeconds).ToString(CultureInfo.InvariantCulture)));
        return limits;
    }
}
