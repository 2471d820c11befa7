// Persistence of PEP nodes as one small XML document per node in the key-value store.
using System.Globalization;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Pep;

/// Reads and writes an account's PEP nodes: key "pep" holds the list of node names, key "pep|NODE" one node with its
/// configuration, members and (when pubsub#persist_items is true) its items. Every write, once stored, is announced to
/// the other nodes of a cluster, which then reload the account's nodes (PepService.CacheName).
public sealed class PepStore(IStorage storage, Caching.ICacheInvalidation invalidation)
{
    private const string StoreNs = "urn:xmppd:pep-store:0";
    private const string IndexKey = "pep";
    private const string NodePrefix = "pep|";

    public async ValueTask<Dictionary<string, PepNode>> LoadAsync(string user, int serviceMax)
    {
        var nodes = new Dictionary<string, PepNode>(StringComparer.Ordinal);
        var index = await storage.KeyValue.GetAsync(user, IndexKey);
        if (index is null) return nodes;
        foreach (var n in StoredStanza.Parse(index).Elements("node", StoreNs))
        {
            var name = n.Attr("name");
            if (name is null) continue;
            var bytes = await storage.KeyValue.GetAsync(user, NodePrefix + name);
            if (bytes is null) continue;
            nodes[name] = Read(StoredStanza.Parse(bytes), name, serviceMax);
        }
        return nodes;
    }

    public async ValueTask SaveNodeAsync(string user, PepNode node)
    {
        await storage.KeyValue.SetAsync(user, NodePrefix + node.Name, Bytes(Write(node)));
        await invalidation.ChangedAsync(PepService.CacheName, user);
    }

    /// Adds or removes one name in the account's node list as one read-modify-write of the stored list
    /// (IKeyValueStore.UpdateAsync): two cluster nodes creating or deleting different PEP nodes of one account at the
    /// same moment both keep their change, where writing the list each had cached would drop the other's.
    public ValueTask AddToIndexAsync(string user, string name) => ChangeIndexAsync(user, name, add: true);

    public ValueTask RemoveFromIndexAsync(string user, string name) => ChangeIndexAsync(user, name, add: false);

    private async ValueTask ChangeIndexAsync(string user, string name, bool add)
    {
        await storage.KeyValue.UpdateAsync(user, IndexKey, stored =>
        {
            var names = stored is null
                ? []
                : StoredStanza.Parse(stored).Elements("node", StoreNs).Select(n => n.Attr("name")).OfType<string>().ToList();
            if (add == names.Contains(name, StringComparer.Ordinal)) return stored;
            if (add) names.Add(name);
            else names.RemoveAll(n => n == name);
            var index = new Element("nodes", StoreNs);
            foreach (var n in names) index.Add(new Element("node", StoreNs).SetAttr("name", n));
            return Bytes(index);
        });
        await invalidation.ChangedAsync(PepService.CacheName, user);
    }

    public async ValueTask DeleteNodeAsync(string user, string name)
    {
        await storage.KeyValue.DeleteAsync(user, NodePrefix + name);
        await invalidation.ChangedAsync(PepService.CacheName, user);
    }

    public async ValueTask DeleteAllAsync(string user, IEnumerable<string> names)
    {
        foreach (var name in names) await storage.KeyValue.DeleteAsync(user, NodePrefix + name);
        await storage.KeyValue.DeleteAsync(user, IndexKey);
        await invalidation.ChangedAsync(PepService.CacheName, user);
    }

    private static Element Write(PepNode node)
    {
        var e = new Element("node", StoreNs).SetAttr("name", node.Name).Add(node.Config.ToForm("submit").Element);
        foreach (var m in node.Members) e.Add(new Element("member", StoreNs).SetAttr("jid", m));
        if (!node.Config.PersistItems) return e;
        foreach (var item in node.Items)
            e.Add(new Element("item", StoreNs)
                .SetAttr("id", item.Id)
                .SetAttr("published", item.Published.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture))
                .SetAttr("publisher", item.Publisher)
                .Add(item.Payload.Clone()));
        return e;
    }

    private static PepNode Read(Element e, string name, int serviceMax)
    {
        var config = new PepNodeConfig();
        if (e.Child("x", Ns.DataForms) is { } x && DataForm.TryParse(x, out var form, out _))
            config = config.Apply(form, serviceMax, out _) ?? config;
        var node = new PepNode(name, config);
        foreach (var m in e.Elements("member", StoreNs))
            if (m.Attr("jid") is { } jid) node.Members.Add(jid);
        foreach (var i in e.Elements("item", StoreNs))
        {
            if (i.Attr("id") is not { } id || i.FirstElement is not { } payload) continue;
            var published = long.TryParse(i.Attr("published"), NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
                ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : DateTimeOffset.UnixEpoch;
            node.Items.Add(new PepItem(id, payload, published, i.Attr("publisher") ?? ""));
        }
        return node;
    }

    private static byte[] Bytes(Element e) => Encoding.UTF8.GetBytes(e.ToString());
}
