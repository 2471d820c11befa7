// XEP-0092: Software Version.
using System.Reflection;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Version;

[Xep("XEP-0092", "1.1")]
public sealed class VersionModule : IXmppModule
{
    public static readonly string ServerVersion =
        typeof(VersionModule).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.1.0";

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Version);
        module.Iq(IqTarget.Server, "query", Ns.Version, Answer);
    }

    private static ValueTask Answer(IqContext c)
    {
        if (!c.IsGet)
        {
            c.Error(StanzaErrors.BadRequest);
            return ValueTask.CompletedTask;
        }
        // XEP-0092 §3: the os element is optional; it is left out so the host system is not disclosed.
        c.Result(new Element("query", Ns.Version)
            .Add(new Element("name", Ns.Version).SetText("xmppd"))
            .Add(new Element("version", Ns.Version).SetText(ServerVersion)));
        return ValueTask.CompletedTask;
    }
}
