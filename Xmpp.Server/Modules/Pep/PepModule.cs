// XEP-0163: Personal Eventing Protocol over the XEP-0060 subset it needs, with XEP-0222/XEP-0223 publish-options.
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Pep;

/// The protocol face of PepService: pubsub and pubsub#owner IQs to an account's bare JID, the account's disco
/// identity, features and node list, and the caps of available presence that drive filtered notifications.
[Xep("XEP-0163", "1.2.2", "PEP: every account a pubsub service, +notify filtering, last item on presence")]
[Xep("XEP-0060", "1.26.0", "the PEP subset: publish, publish-options, items, retract, create, configure, delete, purge, members")]
[Xep("XEP-0222", "1.0.1", "public data via publish-options")]
[Xep("XEP-0223", "1.1.1", "private data via publish-options (whitelist)")]
public sealed partial class PepModule(PepService pep, PepCaps caps, ILogger<PepModule> logger) : IXmppModule
{
    /// Before the presence module (1000): the caps are read from the presence before it is broadcast.
    public const int HookOrder = 900;

    /// Presence from remote contacts: after blocking (100) and invites (900), before the presence module (1000).
    public const int RemotePresenceHookOrder = 950;

    private const string Feature = "http://jabber.org/protocol/pubsub#";

    /// Features of the account's pubsub service; each is implemented in this folder (XEP-0060 §10).
    public static readonly string[] Features =
    [
        "access-open", "access-presence", "access-roster", "access-whitelist", "auto-create", "auto-subscribe",
        "config-node", "create-and-configure", "create-nodes", "delete-items", "delete-nodes", "filtered-notifications",
        "item-ids", "last-published", "member-affiliation", "modify-affiliations", "persistent-items", "presence-notifications",
        "publish", "publish-options", "purge-nodes", "retract-items", "retrieve-affiliations", "retrieve-default", "retrieve-items",
    ];

    /// The caps verification string each available resource last announced, to notice a new or changed one.
    private readonly ConcurrentDictionary<string, string> _lastCaps = new(StringComparer.Ordinal);

    public void Register(IModuleBuilder module)
    {
        module.AccountIdentity("pubsub", "pep", "Personal Eventing");
        foreach (var f in Features) module.AccountFeature(Feature + f);
        module.Iq(IqTarget.Account, "pubsub", Ns.PubSub, PubSubAsync);
        module.Iq(IqTarget.Account, "pubsub", Ns.PubSubOwner, OwnerAsync);
        module.AccountItems(NodeItemsAsync);
        module.Hook(HookPoint.OutboundPresence, HookOrder, PresenceAsync);
        module.Hook(HookPoint.InboundPresence, RemotePresenceHookOrder, RemotePresenceAsync);
        module.OnSessionClosed(session =>
        {
            _lastCaps.TryRemove(session.Jid.ToString(), out _);
            caps.Forget(session.Jid);
            return ValueTask.CompletedTask;
        });
        module.OnAccountDeleted(user => pep.DeleteAccountAsync(user));
    }

    /// XEP-0163 §6.2 / XEP-0030: the nodes of an account the asker may see, as disco#items.
    private async ValueTask<IEnumerable<Element>> NodeItemsAsync(Jid asker, Jid account)
    {
        var items = new List<Element>();
        foreach (var node in await pep.AllAsync(account))
        {
            if (await pep.CheckReadAsync(account, node, asker) is not null) continue;
            var item = new Element("item", Ns.DiscoItems).SetAttr("jid", account.Bare.ToString()).SetAttr("node", node.Name);
            if (node.Config.Title.Length > 0) item.SetAttr("name", node.Config.Title);
            items.Add(item);
        }
        return items;
    }

    /// XEP-0163 §4.3.4: broadcast available presence with caps; on a new or changed verification string the caps are
    /// resolved (in the background, so presence is not held up) and the last items the resource wants are sent.
    private ValueTask<bool> PresenceAsync(StanzaContext c)
    {
        if (c.Origin is not { } session || c.To is not null) return ValueTask.FromResult(false);
        var jid = session.Jid;
        if (c.Type == "unavailable")
        {
            _lastCaps.TryRemove(jid.ToString(), out _);
            return ValueTask.FromResult(false);
        }
        if (c.Type is not null || PepCaps.Read(c.Stanza) is not { } announced) return ValueTask.FromResult(false);
        var previous = _lastCaps.TryGetValue(jid.ToString(), out var p) ? p : null;
        if (previous == announced.Key) return ValueTask.FromResult(false);
        _lastCaps[jid.ToString()] = announced.Key;
        _ = Task.Run(async () =>
        {
            try
            {
                var features = await caps.ResolveAsync(jid, announced);
                if (features.Count > 0) await pep.SendLastItemsAsync(jid, features);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Sending last PEP items to {Jid} failed", jid);
            }
        });
        return ValueTask.FromResult(false);
    }

    /// XEP-0163 §4.3 for contacts on other servers: their servers send the owner their presence; its caps say which
    /// notifications each resource wants (resolved like a local client's, with disco#info to the resource), and a
    /// new or changed resource gets the last items, as a local one does.
    private async ValueTask<bool> RemotePresenceAsync(StanzaContext c)
    {
        if (c.Origin is not null || c.To is not { } owner || c.From.Local is null || pep.IsLocal(c.From)) return false;
        if (c.Type is "unavailable" or "error")
        {
            pep.ForgetRemotePresence(owner, c.From);
            return false;
        }
        if (c.Type is not null || c.From.Resource is null || PepCaps.Read(c.Stanza) is not { } announced) return false;
        // Only contacts subscribed to the owner get events: not a room's occupants, not strangers' directed presence.
        if (!await pep.IsSubscriberAsync(owner, c.From) || !pep.NoteRemotePresence(owner, c.From, c.Stanza)) return false;
        var contact = c.From;
        _ = Task.Run(async () =>
        {
            try
            {
                var features = await caps.ResolveAsync(contact, announced);
                if (features.Count > 0) await pep.SendLastItemsToRemoteAsync(owner, contact, features);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Sending last PEP items of {Owner} to {Jid} failed", owner.Bare, contact);
            }
        });
        return false;
    }

    private static void Fail(IqContext c, PepError error)
    {
        if (error.PubSubCondition is null)
        {
            c.Error(error.Condition, error.Text);
            return;
        }
        var app = new Element(error.PubSubCondition, Ns.PubSubErrors);
        if (error.Feature is not null) app.SetAttr("feature", error.Feature);
        c.Error(error.Condition, app, error.Text);
    }

    /// XEP-0060 §7.1.3.1 and §8: only the account owner publishes, retracts and manages nodes.
    private static bool RequireOwner(IqContext c)
    {
        if (c.From.Bare == c.To.Bare) return true;
        c.Error(StanzaErrors.Forbidden, "only the account owner may do this");
        return false;
    }
}
