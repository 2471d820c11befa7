// XEP-0163 §4: notifications, filtered by the +notify features of XEP-0115 caps, and the last item on presence (§4.3.4).
using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Pep;

public sealed partial class PepService
{
    private ImmutableDictionary<string, ImmutableList<Func<PepChange, ValueTask>>> _handlers =
        ImmutableDictionary<string, ImmutableList<Func<PepChange, ValueTask>>>.Empty.WithComparers(StringComparer.Ordinal);

    public IDisposable OnChange(string node, Func<PepChange, ValueTask> handler)
    {
        ImmutableInterlocked.AddOrUpdate(ref _handlers, node, _ => [handler], (_, list) => list.Add(handler));
        return new ChangeSubscription(() => ImmutableInterlocked.AddOrUpdate(ref _handlers, node, _ => [], (_, list) => list.Remove(handler)));
    }

    private sealed class ChangeSubscription(Action dispose) : IDisposable
    {
        private Action? _dispose = dispose;
        public void Dispose() => Interlocked.Exchange(ref _dispose, null)?.Invoke();
    }

    private async ValueTask RaiseAsync(PepChange change)
    {
        if (!_handlers.TryGetValue(change.Node, out var list)) return;
        foreach (var handler in list)
        {
            try { await handler(change); }
            catch (Exception ex) { logger.LogError(ex, "PEP change handler failed for {Node}", change.Node); }
        }
    }

    /// The XEP-0060 §7.1.2.1 event item; without payload when pubsub#deliver_payloads is false.
    public static Element ItemElement(PepItem item, bool withPayload, string ns)
    {
        var e = new Element("item", ns).SetAttr("id", item.Id);
        if (withPayload) e.Add(item.Payload.Clone());
        return e;
    }

    private static Element ItemsEvent(PepNodeSnapshot node, PepItem item) =>
        new Element("items", Ns.PubSubEvent).SetAttr("node", node.Name).Add(ItemElement(item, node.Config.DeliverPayloads, Ns.PubSubEvent));

    private ValueTask NotifyItemAsync(Jid owner, PepNodeSnapshot node, PepItem item) => NotifyAsync(owner, node, ItemsEvent(node, item));

    /// XEP-0163 §4.3: one notification per interested available resource of the owner and of contacts allowed to see it.
    private async ValueTask NotifyAsync(Jid owner, PepNodeSnapshot node, Element eventChild)
    {
        if (!node.Config.DeliverNotifications) return;
        var (recipients, unresolved) = await RecipientsAsync(owner, node);
        logger.LogDebug("PEP event on {Owner} {Node} to {Count} resources", owner, node.Name, recipients.Count);
        foreach (var entry in recipients)
            await SendEventAsync(owner, entry, eventChild, null);
        if (unresolved is not null) _ = NotifyOnceResolvedAsync(owner, node.Name + "+notify", unresolved, eventChild);
        foreach (var remote in await RemoteRecipientsAsync(owner, node))
            await SendRemoteEventAsync(owner, remote, eventChild, null);
    }

    /// XEP-0163 §4.1, §4.2: the owner's resources and contacts with a presence subscription to the owner are
    /// subscribed automatically, but only resources whose caps carry NODE+notify receive anything. Local contacts
    /// here; contacts on other servers in PepService.Remote.cs.
    /// The interested resources, and those whose caps this node has not resolved yet (null when none).
    private async ValueTask<(List<SessionEntry> Known, List<(SessionEntry Entry, PepCaps.Caps Caps)>? Unresolved)> RecipientsAsync(
        Jid owner, PepNodeSnapshot node)
    {
        var feature = node.Name + "+notify";
        var list = new List<SessionEntry>();
        List<(SessionEntry, PepCaps.Caps)>? unresolved = null;
        foreach (var e in directory.Get(owner).Available())
            Sort(e, feature, list, ref unresolved);
        foreach (var item in await rosters.ItemsAsync(owner))
        {
            if (!item.InRoster || item.Subscription is not (Subscription.From or Subscription.Both)) continue;
            if (!Jid.TryParse(item.Jid, out var contact) || !domains.IsLocal(contact) || contact.Bare == owner) continue;
            var wanted = new List<SessionEntry>();
            List<(SessionEntry, PepCaps.Caps)>? pending = null;
            foreach (var e in directory.Get(contact.Bare).Available()) Sort(e, feature, wanted, ref pending);
            if ((wanted.Count == 0 && pending is null) || await CheckReadAsync(owner, node, contact) is not null) continue;
            list.AddRange(wanted);
            if (pending is not null) (unresolved ??= []).AddRange(pending);
        }
        return (list, unresolved);
    }

    private void Sort(SessionEntry e, string feature, List<SessionEntry> wanted, ref List<(SessionEntry, PepCaps.Caps)>? unresolved)
    {
        if (caps.Known(e.Jid, e.Presence) is { } features)
        {
            if (features.Contains(feature)) wanted.Add(e);
        }
        else if (PepCaps.Read(e.Presence) is { } announced)
        {
            (unresolved ??= []).Add((e, announced));
        }
    }

    /// Resources announcing caps this node has not resolved: in a cluster, a resource on another node with a verification
    /// string no client of this node has used (its own node resolved it; caps are not shared between nodes), or one
    /// whose resolution is still under way. Each is asked once (XEP-0115 §6.2, then cached by hash, §5.4) off the
    /// publisher's path, and gets the event if its features include NODE+notify (XEP-0163 §4.2).
    private async Task NotifyOnceResolvedAsync(Jid owner, string feature, List<(SessionEntry Entry, PepCaps.Caps Caps)> unresolved, Element eventChild)
    {
        try
        {
            await Task.WhenAll(unresolved.Select(async u =>
            {
                var features = await caps.ResolveAsync(u.Entry.Jid, u.Caps);
                if (features.Contains(feature)) await SendEventAsync(owner, u.Entry, eventChild, null);
            }));
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "PEP event of {Owner} to resources with unresolved caps failed", owner);
        }
    }

    private async ValueTask SendEventAsync(Jid owner, SessionEntry to, Element eventChild, DateTimeOffset? delay)
    {
        var message = new Element("message", Ns.Client)
            .SetAttr("from", owner.ToString()).SetAttr("to", to.Jid.ToString()).SetAttr("type", "headline")
            .SetAttr("id", "pep-" + Interlocked.Increment(ref _seq).ToString(CultureInfo.InvariantCulture))
            .Add(new Element("event", Ns.PubSubEvent).Add(eventChild.Clone()));
        if (delay is { } stamp)
            message.Add(new Element("delay", Ns.Delay).SetAttr("from", owner.ToString())
                .SetAttr("stamp", stamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)));
        await router.DeliverAsync(to, message);
    }

    /// XEP-0163 §4.3.4: a resource that became available (or changed its caps) gets the last item of every node it
    /// has +notify for, of its own account and of each local contact whose presence it is subscribed to.
    public async ValueTask SendLastItemsAsync(Jid full, FrozenSet<string> features)
    {
        if (directory.Find(full) is not { } entry) return;
        var user = full.Bare;
        var owners = new List<Jid> { user };
        foreach (var item in await rosters.ItemsAsync(user))
        {
            if (!item.InRoster || item.Subscription is not (Subscription.To or Subscription.Both)) continue;
            if (Jid.TryParse(item.Jid, out var contact) && contact.Local is not null && domains.IsLocal(contact) && contact.Bare != user)
                owners.Add(contact.Bare);
        }
        foreach (var owner in owners)
        {
            // The owner's server sends to its subscribers: the owner's roster must agree that the user is one.
            if (owner != user && await rosters.FindAsync(owner, user) is not { InRoster: true, Subscription: Subscription.From or Subscription.Both })
                continue;
            foreach (var node in await AllAsync(owner))
            {
                if (!node.Config.SendsLastOnPresence || !node.Config.DeliverNotifications) continue;
                if (!features.Contains(node.Name + "+notify") || node.Latest(Now) is not { } last) continue;
                if (owner != user && await CheckReadAsync(owner, node, user) is not null) continue;
                await SendEventAsync(owner, entry, ItemsEvent(node, last), last.Published);
            }
        }
    }
}
