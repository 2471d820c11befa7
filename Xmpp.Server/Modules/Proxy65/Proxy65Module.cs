// XEP-0065: SOCKS5 Bytestreams, the proxy (mediated connections, §6). The SOCKS5 listener is Socks5ConnectionHandler.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Proxy65;

/// Serves proxy.DOMAIN: tells initiators where the SOCKS5 listener is (§4) and activates bytestreams whose two
/// connections have arrived (§6.3.5). Only local users may use it. Nothing is registered when its port is 0.
[Xep("XEP-0065", "1.8.2", "proxy only (mediated connections over TCP)")]
public sealed class Proxy65Module(XmppServerOptions options, ServedDomains domains, BytestreamRelay relay) : IXmppModule
{
    public const string ServiceName = "SOCKS5 Bytestreams Proxy";

    private Proxy65Options Proxy => options.Proxy65;

    public void Register(IModuleBuilder module)
    {
        if (Proxy.Port == 0) return;
        foreach (var domain in domains.All)
        {
            var service = Proxy.Subdomain + "." + domain;
            module.Service(service, domain, ServiceName);
            module.ServiceIq(service, "query", Ns.DiscoInfo, Info);
            module.ServiceIq(service, "query", Ns.DiscoItems, Items);
            module.ServiceIq(service, "query", Ns.Bytestreams, Bytestreams);
        }
    }

    /// DST.ADDR of a bytestream (§5.3.2): hex SHA-1 of the sid, the initiator's and the target's full JIDs.
    public static string Address(string sid, string initiator, string target) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(sid + initiator + target)));

    private string Host(string domain)
    {
        if (Proxy.Host.Length > 0) return Proxy.Host;
        var specific = options.ListenAddresses.FirstOrDefault(a => a != "any");
        return specific ?? domain;
    }

    private static ValueTask Info(IqContext c)
    {
        if (!c.IsGet || !c.To.IsDomain || c.Payload.Attr("node") is not null) return Fail(c, c.IsGet ? StanzaErrors.ItemNotFound : StanzaErrors.BadRequest);
        c.Result(new Element("query", Ns.DiscoInfo).Add(
            new Element("identity", Ns.DiscoInfo).SetAttr("category", "proxy").SetAttr("type", "bytestreams").SetAttr("name", ServiceName),
            new Element("feature", Ns.DiscoInfo).SetAttr("var", Ns.DiscoInfo),
            new Element("feature", Ns.DiscoInfo).SetAttr("var", Ns.DiscoItems),
            new Element("feature", Ns.DiscoInfo).SetAttr("var", Ns.Bytestreams)));
        return ValueTask.CompletedTask;
    }

    private static ValueTask Items(IqContext c)
    {
        if (!c.IsGet || !c.To.IsDomain || c.Payload.Attr("node") is not null) return Fail(c, c.IsGet ? StanzaErrors.ItemNotFound : StanzaErrors.BadRequest);
        c.Result(new Element("query", Ns.DiscoItems));
        return ValueTask.CompletedTask;
    }

    private ValueTask Bytestreams(IqContext c)
    {
        if (!c.To.IsDomain) return Fail(c, StanzaErrors.ItemNotFound);
        // §4: a proxy that will not serve an entity answers not-allowed.
        if (c.From.Local is null || !domains.IsLocal(c.From)) return Fail(c, StanzaErrors.NotAllowed);
        if (c.IsGet)
        {
            // §4, example 6: the network address of the proxy.
            var parent = c.To.Domain[(Proxy.Subdomain.Length + 1)..];
            c.Result(new Element("query", Ns.Bytestreams).Add(new Element("streamhost", Ns.Bytestreams)
                .SetAttr("jid", c.To.Domain).SetAttr("host", Host(parent)).SetAttr("port", Proxy.Port.ToString(CultureInfo.InvariantCulture))));
            return ValueTask.CompletedTask;
        }
        // §6.3.5: the initiator asks the proxy to activate the bytestream to the target.
        var sid = c.Payload.Attr("sid");
        var activate = c.Payload.ChildText("activate", Ns.Bytestreams)?.Trim();
        if (string.IsNullOrEmpty(sid) || string.IsNullOrEmpty(activate)) return Fail(c, StanzaErrors.BadRequest, "activation needs a sid and an <activate/> target");
        if (!Jid.TryParse(activate, out var target)) return Fail(c, StanzaErrors.JidMalformed);
        if (!relay.Activate(Address(sid, c.From.ToString(), target.ToString())))
            return Fail(c, StanzaErrors.ItemNotFound, "the initiator and the target are not both connected to the proxy for this sid");
        c.Result();
        return ValueTask.CompletedTask;
    }

    private static ValueTask Fail(IqContext c, string condition, string? text = null)
    {
        c.Error(condition, text);
        return ValueTask.CompletedTask;
    }
}
