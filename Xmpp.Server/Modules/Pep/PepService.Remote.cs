// XEP-0163 §4 for contacts on other servers: notifications and the last items on presence go to their resources too.
using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Pep;

public sealed partial class PepService
{
    /// Resources of a remote contact that may hold per owner: more presences from one contact are not tracked.
    private const int MaxRemoteResourcesPerContact = 16;

    /// Owner (bare) → the available resources of remote contacts that sent the owner presence, with that presence (its
    /// caps say what each resource wants, XEP-0163 §4.2). Local contacts are in the session directory instead.
    /// Node-local: in a cluster the node that received a contact's presence is the one that knows the resource; another
    /// node's notifications miss it until the contact's next presence, which events tolerate (they are not stored).
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, Element>> _remoteResources = new(StringComparer.Ordinal);

    public bool IsLocal(Jid jid) => domains.IsLocal(jid);

    /// XEP-0163 §4.1: whether the contact has a subscription to the owner's presence ("from" or "both").
    public async ValueTask<bool> IsSubscriberAsync(Jid owner, Jid contact) =>
        await rosters.FindAsync(owner.Bare, contact.Bare) is { InRoster: true, Subscription: Subscription.From or Subscription.Both };

    /// Notes available presence from a remote contact's resource to an owner; true when its caps are new or changed.
    public bool NoteRemotePresence(Jid owner, Jid contact, Element presence)
    {
        var resources = _remoteResources.GetOrAdd(owner.Bare.ToString(), _ => new ConcurrentDictionary<string, Element>(StringComparer.Ordinal));
        var key = contact.ToString();
        var previous = resources.TryGetValue(key, out var p) ? PepCaps.Read(p)?.Key : null;
        if (previous is null && !resources.ContainsKey(key)
            && resources.Keys.Count(k => k.StartsWith(contact.Bare + "/", StringComparison.Ordinal)) >= MaxRemoteResourcesPerContact)
            return false;
        resources[key] = presence.Clone();
        return previous != PepCaps.Read(presence)?.Key;
    }

    /// The remote resource went offline (or its server said so): no more events for it.
    public void ForgetRemotePresence(Jid owner, Jid contact)
    {
        if (!_remoteResources.TryGetValue(owner.Bare.ToString(), out var resources)) return;
        if (contact.Resource is null)
        {
            foreach (var key in resources.Keys.Where(k => k.StartsWith(contact.Bare + "/", StringComparison.Ordinal))) resources.TryRemove(key, out _);
        }
        else resources.TryRemove(contact.ToString(), out _);
    }

    /// The remote resources of one contact of the owner that announced NODE+notify.
    private IEnumerable<Jid> RemoteResourcesWanting(Jid owner, Jid contact, string feature)
    {
        if (!_remoteResources.TryGetValue(owner.Bare.ToString(), out var resources)) yield break;
        foreach (var (key, presence) in resources)
        {
            if (!Jid.TryParse(key, out var full) || full.Bare != contact.Bare) continue;
            if (caps.Known(full, presence) is { } features && features.Contains(feature)) yield return full;
        }
    }

    /// XEP-0163 §4.3.1: the owner's remote contacts with a subscription to the owner's presence, whose resources want
    /// the node and may read it.
    private async ValueTask<List<Jid>> RemoteRecipientsAsync(Jid owner, PepNodeSnapshot node)
    {
        var list = new List<Jid>();
        if (!_remoteResources.TryGetValue(owner.Bare.ToString(), out var resources) || resources.IsEmpty) return list;
        var feature = node.Name + "+notify";
        foreach (var item in await rosters.ItemsAsync(owner))
        {
            if (!item.InRoster || item.Subscription is not (Subscription.From or Subscription.Both)) continue;
            if (!Jid.TryParse(item.Jid, out var contact) || domains.IsLocal(contact)) continue;
            var wanting = RemoteResourcesWanting(owner, contact, feature).ToList();
            if (wanting.Count == 0 || await CheckReadAsync(owner, node, contact) is not null) continue;
            list.AddRange(wanting);
        }
        return list;
    }

    private async ValueTask SendRemoteEventAsync(Jid owner, Jid to, Element eventChild, DateTimeOffset? delay)
    {
        var message = new Element("message", Ns.Client)
            .SetAttr("from", owner.ToString()).SetAttr("to", to.ToString()).SetAttr("type", "headline")
            .SetAttr("id", "pep-" + Interlocked.Increment(ref _seq).ToString(CultureInfo.InvariantCulture))
            .Add(new Element("event", Ns.PubSubEvent).Add(eventChild.Clone()));
        if (delay is { } stamp)
            message.Add(new Element("delay", Ns.Delay).SetAttr("from", owner.ToString())
                .SetAttr("stamp", stamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)));
        // Over the link to the contact's server, like any stanza of ours for another domain.
        await router.RouteAsync(message, null);
    }

    /// XEP-0163 §4.3.4 for a remote contact's resource that became available with caps: the last item of each of the
    /// owner's nodes it wants and may read.
    public async ValueTask SendLastItemsToRemoteAsync(Jid owner, Jid contact, FrozenSet<string> features)
    {
        if (!await IsSubscriberAsync(owner, contact)) return;
        foreach (var node in await AllAsync(owner.Bare))
        {
            if (!node.Config.SendsLastOnPresence || !node.Config.DeliverNotifications) continue;
            if (!features.Contains(node.Name + "+notify") || node.Latest(Now) is not { } last) continue;
            if (await CheckReadAsync(owner.Bare, node, contact) is not null) continue;
            await SendRemoteEventAsync(owner.Bare, contact, ItemsEvent(node, last), last.Published);
        }
    }
}
