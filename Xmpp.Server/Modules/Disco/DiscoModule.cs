// XEP-0030: Service Discovery, and XEP-0115: Entity Capabilities for the server itself.
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Disco;

/// Answers disco#info and disco#items for the server and for accounts, from exactly what the loaded modules
/// registered, so nothing is announced that no module implements.
[Xep("XEP-0030", "2.5rc3")]
[Xep("XEP-0115", "1.6", "the server's own capabilities in stream features")]
public sealed class DiscoModule(IServiceProvider services) : IXmppModule
{
    public const string CapsNode = "https://github.com/xmppd/xmppd";

    private ModuleRegistry? _registry;
    private string? _ver;

    private ModuleRegistry Registry => _registry ??= services.GetRequiredService<ModuleRegistry>();

    public void Register(IModuleBuilder module)
    {
        module.ServerIdentity("server", "im", "xmppd");
        module.ServerFeature(Ns.DiscoInfo);
        module.ServerFeature(Ns.DiscoItems);
        module.AccountFeature(Ns.DiscoInfo);
        module.AccountFeature(Ns.DiscoItems);
        module.Iq(IqTarget.Server, "query", Ns.DiscoInfo, ServerInfo);
        module.Iq(IqTarget.Server, "query", Ns.DiscoItems, ServerItems);
        module.Iq(IqTarget.Account, "query", Ns.DiscoInfo, AccountInfo);
        module.Iq(IqTarget.Account, "query", Ns.DiscoItems, AccountItems);
        module.StreamFeature(StreamFeatureStage.PostAuth, _ => new Element("c", Ns.Caps)
            .SetAttr("hash", "sha-1").SetAttr("node", CapsNode).SetAttr("ver", CapsVersion));
    }

    /// XEP-0115 §5.1 verification string over the server's identities, features and extended forms.
    public string CapsVersion => _ver ??= ComputeVer(Registry.Identities, Registry.ServerFeatures, InfoForms());

    private List<Element> InfoForms() => Registry.ServerInfoForms.Select(f => f()).OfType<Element>().ToList();

    public static string ComputeVer(IEnumerable<(string Category, string Type, string Name)> identities, IEnumerable<string> features,
        IEnumerable<Element>? forms = null)
    {
        var sb = new StringBuilder();
        foreach (var (category, type, name) in identities.OrderBy(i => i.Category, StringComparer.Ordinal).ThenBy(i => i.Type, StringComparer.Ordinal))
            sb.Append(category).Append('/').Append(type).Append("//").Append(name).Append('<');
        foreach (var f in features.OrderBy(f => f, StringComparer.Ordinal))
            sb.Append(f).Append('<');
        // XEP-0115 §5.4 steps 3.6-3.8: each extended form by FORM_TYPE, then its fields by var, each with its sorted values.
        var typed = (forms ?? []).Select(DataForm.Parse).Where(f => f.FormType is not null).OrderBy(f => f.FormType, StringComparer.Ordinal);
        foreach (var form in typed)
        {
            sb.Append(form.FormType).Append('<');
            foreach (var var in form.FieldNames.Where(n => n != "FORM_TYPE").Order(StringComparer.Ordinal))
            {
                sb.Append(var).Append('<');
                foreach (var value in form.Values(var).Order(StringComparer.Ordinal)) sb.Append(value).Append('<');
            }
        }
        return Convert.ToBase64String(SHA1.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    private ValueTask ServerInfo(IqContext c)
    {
        if (!c.IsGet) { c.Error(StanzaErrors.BadRequest); return ValueTask.CompletedTask; }
        var node = c.Payload.Attr("node");
        var query = new Element("query", Ns.DiscoInfo);
        if (node is not null && node != CapsNode + "#" + CapsVersion)
        {
            // XEP-0030 §3.2: a node another module answers for (ad-hoc commands, for one).
            if (Registry.FindServerNode(c.From, c.To.Domain, node) is not { } found)
            {
                c.Error(StanzaErrors.ItemNotFound);
                return ValueTask.CompletedTask;
            }
            query.SetAttr("node", node);
            AddInfo(query, found.Identities, found.Features);
            c.Result(query);
            return ValueTask.CompletedTask;
        }
        if (node is not null) query.SetAttr("node", node);
        AddInfo(query, Registry.Identities, Registry.ServerFeatures);
        foreach (var form in InfoForms()) query.Add(form);
        c.Result(query);
        return ValueTask.CompletedTask;
    }

    private static void AddInfo(Element query, IEnumerable<(string Category, string Type, string Name)> identities, IEnumerable<string> features)
    {
        foreach (var (category, type, name) in identities)
            query.Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", category).SetAttr("type", type).SetAttr("name", name));
        foreach (var f in features)
            query.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
    }

    private ValueTask ServerItems(IqContext c)
    {
        if (!c.IsGet) { c.Error(StanzaErrors.BadRequest); return ValueTask.CompletedTask; }
        var query = new Element("query", Ns.DiscoItems);
        if (c.Payload.Attr("node") is { } node)
        {
            if (Registry.FindServerNode(c.From, c.To.Domain, node) is not { } found)
            {
                c.Error(StanzaErrors.ItemNotFound);
                return ValueTask.CompletedTask;
            }
            query.SetAttr("node", node);
            foreach (var item in found.Items) query.Add(item.Clone());
            c.Result(query);
            return ValueTask.CompletedTask;
        }
        // XEP-0030 §4: the services hosted on subdomains (MUC, upload, proxy) are the server's items, each listed once.
        foreach (var (domain, name) in Registry.ServicesOf(c.To.Domain))
            query.Add(new Element("item", Ns.DiscoItems).SetAttr("jid", domain).SetAttr("name", name));
        c.Result(query);
        return ValueTask.CompletedTask;
    }

    private ValueTask AccountInfo(IqContext c)
    {
        if (!c.IsGet) { c.Error(StanzaErrors.BadRequest); return ValueTask.CompletedTask; }
        if (c.Payload.Attr("node") is not null) { c.Error(StanzaErrors.ItemNotFound); return ValueTask.CompletedTask; }
        // XEP-0030 §3.1 / RFC 6121 §8.5.2.1.3: the server answers for the account's bare JID.
        var query = new Element("query", Ns.DiscoInfo)
            .Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "account").SetAttr("type", "registered"));
        foreach (var (category, type, name) in Registry.AccountIdentities)
            query.Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", category).SetAttr("type", type).SetAttr("name", name));
        foreach (var f in Registry.AccountFeatures)
            query.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
        c.Result(query);
        return ValueTask.CompletedTask;
    }

    private async ValueTask AccountItems(IqContext c)
    {
        if (!c.IsGet) { c.Error(StanzaErrors.BadRequest); return; }
        if (c.Payload.Attr("node") is not null) { c.Error(StanzaErrors.ItemNotFound); return; }
        var query = new Element("query", Ns.DiscoItems);
        foreach (var source in Registry.AccountItemSources)
            foreach (var item in await source(c.From, c.To))
                query.Add(item);
        c.Result(query);
    }
}
