// RFC 6121 §2: roster get, set and remove, with XEP-0237 roster versioning.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Roster;

/// The jabber:iq:roster protocol for the account's own resources. Subscription state is never set by clients here:
/// it changes only through presence subscriptions (the presence module, through IRosterService).
[Xep("RFC 6121", "§2, §3")]
[Xep("XEP-0237", "1.3")]
public sealed class RosterModule(RosterService rosters, ISessionDirectory directory, IRouter router) : IXmppModule
{
    /// Longest item name or group name accepted (RFC 6121 §2.3.3 leaves the limit to the server).
    public const int MaxTextLength = 1024;

    public void Register(IModuleBuilder module)
    {
        module.Iq(IqTarget.Self, "query", Ns.Roster, HandleAsync);
        module.Iq(IqTarget.Account, "query", Ns.Roster, ForbiddenAsync);
        module.StreamFeature(StreamFeatureStage.PostAuth, _ => new Element("ver", Ns.RosterVer));
        module.OnAccountDeleted(user => rosters.DeleteAllAsync(user));
    }

    /// RFC 6121 §2.1.3, §2.3.3: only the account itself may read or change its roster.
    private static ValueTask ForbiddenAsync(IqContext c)
    {
        c.Error(StanzaErrors.Forbidden);
        return ValueTask.CompletedTask;
    }

    private ValueTask HandleAsync(IqContext c) => c.IsGet ? GetAsync(c) : SetAsync(c);

    private async ValueTask GetAsync(IqContext c)
    {
        if (c.Payload.Elements().Any())
        {
            // RFC 6121 §2.1.3: a roster get carries an empty query.
            c.Error(StanzaErrors.BadRequest, "A roster get has no items");
            return;
        }
        // The resource is "interested" from now on and receives pushes (RFC 6121 §2.1.6).
        if (c.Origin is { } origin) directory.Update(origin, e => e with { RosterRequested = true });
        var snapshot = await rosters.SnapshotAsync(c.From);
        var requested = c.Payload.Attr("ver");
        if (requested is not null && requested == snapshot.Version)
        {
            // XEP-0237 §3 / RFC 6121 §2.6.3: the client's copy is current; changes follow as pushes.
            c.Result();
            return;
        }
        var query = new Element("query", Ns.Roster).SetAttr("ver", snapshot.Version);
        foreach (var item in snapshot.Items)
            if (item.InRoster) query.Add(RosterService.ItemElement(item)); // hidden records only remember a request
        c.Result(query);
    }

    private async ValueTask SetAsync(IqContext c)
    {
        var items = c.Payload.Elements("item", Ns.Roster).ToList();
        if (items.Count != 1)
        {
            // RFC 6121 §2.1.5: a roster set contains exactly one item.
            c.Error(StanzaErrors.BadRequest, "A roster set carries exactly one item");
            return;
        }
        var item = items[0];
        var jidText = item.Attr("jid");
        if (string.IsNullOrEmpty(jidText))
        {
            c.Error(StanzaErrors.BadRequest, "The item has no jid");
            return;
        }
        if (!Jid.TryParse(jidText, out var contact) || contact is null)
        {
            c.Error(StanzaErrors.JidMalformed, "The item's jid is not a valid address");
            return;
        }
        switch (item.Attr("subscription"))
        {
            case "remove":
                await RemoveAsync(c, contact);
                return;
            case null or "none" or "to" or "from" or "both":
                break; // RFC 6121 §2.1.2.5: any value but "remove" is ignored in a set
            default:
                c.Error(StanzaErrors.BadRequest, "Unknown subscription value");
                return;
        }
        if (Validate(item) is { } problem)
        {
            c.Error(problem.Condition, problem.Text);
            return;
        }
        var name = item.Attr("name");
        if (name is { Length: 0 }) name = null;
        var groups = item.Elements("group", Ns.Roster).Select(g => g.Text).ToList();
        // RFC 6121 §2.3.2, §2.4.2: name and groups come from the client; subscription state stays as it is.
        var change = await rosters.ChangeAsync(c.From, contact, current => current is null
            ? new RosterItem(RosterService.ContactKey(contact), name, groups, Subscription.None,
                AskOut: false, PendingIn: false, PreApproved: false, InRoster: true)
            : current with { Name = name, Groups = groups, InRoster = true });
        if (change.Refused)
        {
            // RFC 6121 §2.3.3: a roster set the server cannot accept because of a size limit.
            c.Error(StanzaErrors.NotAllowed, "The roster is full");
            return;
        }
        c.Result();
    }

    /// RFC 6121 §2.3.3, §2.4.3 error cases for an added or updated item.
    private static (string Condition, string Text)? Validate(Element item)
    {
        if (item.Attr("name") is { Length: > MaxTextLength })
            return (StanzaErrors.NotAcceptable, "The item name is too long");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in item.Elements("group", Ns.Roster))
        {
            var text = group.Text;
            if (text.Length == 0) return (StanzaErrors.NotAcceptable, "A group name is empty");
            if (text.Length > MaxTextLength) return (StanzaErrors.NotAcceptable, "A group name is too long");
            if (!seen.Add(text)) return (StanzaErrors.BadRequest, "A group is listed twice");
        }
        return null;
    }

    /// RFC 6121 §2.5.2: removing an item also cancels the subscriptions in both directions.
    private async ValueTask RemoveAsync(IqContext c, Jid contact)
    {
        var change = await rosters.ChangeAsync(c.From, contact, current => current is { InRoster: true } ? null : current);
        if (change.Before is not { InRoster: true } removed)
        {
            // RFC 6121 §2.5.3: the item is not in the roster.
            c.Error(StanzaErrors.ItemNotFound);
            return;
        }
        c.Result();
        var user = c.From.Bare;
        if (removed.Subscription is Subscription.From or Subscription.Both || removed.PendingIn)
        {
            if (removed.Subscription is Subscription.From or Subscription.Both)
            {
                // The contact stops seeing the user: each available resource goes unavailable for them first (§3.2.2).
                foreach (var e in directory.Get(user).Available())
                    await router.RouteAsync(Presence("unavailable", e.Jid, contact), null);
            }
            await router.RouteAsync(Presence("unsubscribed", user, contact), null);
        }
        if (removed.Subscription is Subscription.To or Subscription.Both || removed.AskOut)
            await router.RouteAsync(Presence("unsubscribe", user, contact), null);
    }

    private static Element Presence(string type, Jid from, Jid to) => new Element("presence", Ns.Client)
        .SetAttr("type", type).SetAttr("from", from.ToString()).SetAttr("to", to.ToString());
}
