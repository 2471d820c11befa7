// RFC 6121 §3 and Appendix A: the presence subscription state machine, at the user's and at the contact's server.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Presence;

public sealed partial class PresenceModule
{
    // ---- Outbound: the local user sends a subscription stanza (Appendix A.2) ----

    private async ValueTask OutboundSubscriptionAsync(StanzaContext c, ISession session)
    {
        var stanza = c.Stanza;
        if (c.To is null)
        {
            await router.BounceAsync(stanza, StanzaErrors.BadRequest, "A subscription stanza needs a 'to' address");
            return;
        }
        var user = session.Jid.Bare;
        var contact = c.To.Bare;
        // An account always has its own presence (§4.2.2); there is no subscription to itself to manage.
        if (contact == user) return;
        // §3.1.2: subscription stanzas travel between bare JIDs; the server stamps both.
        stanza.SetAttr("from", user.ToString()).SetAttr("to", contact.ToString());
        switch (c.Type)
        {
            case "subscribe": await OutboundSubscribeAsync(stanza, user, contact); break;
            case "subscribed": await OutboundSubscribedAsync(stanza, user, contact); break;
            case "unsubscribe": await OutboundUnsubscribeAsync(stanza, user, contact); break;
            case "unsubscribed": await OutboundUnsubscribedAsync(stanza, user, contact); break;
        }
    }

    /// §3.1.2: the contact enters the roster (if new) with ask='subscribe' unless the user is subscribed already.
    private async ValueTask OutboundSubscribeAsync(Element stanza, Jid user, Jid contact)
    {
        if (!_subscribeRate.TryTake(user.ToString()))
        {
            // RFC 6120 §8.3.3.12, type wait: the request may be sent again later. (A flood of requests to one contact
            // needs no limit of its own: a request already pending is not delivered again, RFC 6121 A.3.1.)
            metrics.Refuse("subscription-rate");
            await router.BounceAsync(stanza, StanzaErrors.PolicyViolation, "Too many subscription requests: slow down", "wait");
            return;
        }
        var change = await rosters.ChangeAsync(user, contact, item => item switch
        {
            null => NewItem(contact) with { AskOut = true },
            { InRoster: true, Subscription: Subscription.To or Subscription.Both } => item,
            { InRoster: true, AskOut: true } => item,
            _ => item with { AskOut = item.Subscription is Subscription.None or Subscription.From || item.AskOut, InRoster = true },
        });
        if (change.Refused)
        {
            metrics.Refuse("roster-size");
            await router.BounceAsync(stanza, StanzaErrors.NotAllowed, "Your roster is full");
            return;
        }
        if (IsLocal(contact) && contact.Local is { } local && !await accounts.ExistsAsync(local))
        {
            // §3.1.3: there is no such account; the request is answered with unsubscribed on its behalf.
            await router.RouteAsync(Stanza("unsubscribed", contact, user), null);
            return;
        }
        await router.RouteAsync(stanza, null);
    }

    /// §3.1.5 approval of a pending request, or §3.4.2 pre-approval when nothing is pending.
    private async ValueTask OutboundSubscribedAsync(Element stanza, Jid user, Jid contact)
    {
        var change = await rosters.ChangeAsync(user, contact, item => item switch
        {
            // §3.4.2 step 1: the contact is subscribed already; nothing to do.
            { Subscription: Subscription.From or Subscription.Both } => item,
            { PendingIn: true } => item with
            {
                Subscription = WithFrom(item.Subscription), PendingIn = false, PendingInStatus = null,
                PreApproved = false, InRoster = true,
            },
            // §3.4.2 steps 3-4: no request pending, so this pre-approves one; the item shows approved='true'.
            null => NewItem(contact) with { PreApproved = true },
            { PreApproved: true, InRoster: true } => item,
            _ => item with { PreApproved = true, InRoster = true },
        });
        if (!GainedFrom(change.Before, change.After)) return; // a pre-approval is not routed (§3.4.2)
        await router.RouteAsync(stanza, null);
        // §3.1.5: the new subscriber gets the current presence of each of the user's available resources.
        await SendCurrentPresenceAsync(user, contact);
    }

    /// §3.3.2: the user no longer wants the contact's presence.
    private async ValueTask OutboundUnsubscribeAsync(Element stanza, Jid user, Jid contact)
    {
        await rosters.ChangeAsync(user, contact, item =>
            item is not null && (item.Subscription is Subscription.To or Subscription.Both || item.AskOut)
                ? item with { Subscription = WithoutTo(item.Subscription), AskOut = false }
                : item);
        // Routed whatever our state, so a contact whose roster drifted out of step is corrected too.
        await router.RouteAsync(stanza, null);
    }

    /// §3.2.2 cancels the contact's subscription or denies a pending request; §3.4 also lets it cancel a pre-approval.
    private async ValueTask OutboundUnsubscribedAsync(Element stanza, Jid user, Jid contact)
    {
        var change = await rosters.ChangeAsync(user, contact, item =>
        {
            if (item is null) return null;
            if (item.Subscription is not (Subscription.From or Subscription.Both) && !item.PendingIn && !item.PreApproved)
                return item;
            var next = item with
            {
                Subscription = WithoutFrom(item.Subscription), PendingIn = false, PendingInStatus = null, PreApproved = false,
            };
            return next.InRoster ? next : null; // a hidden record only remembered the request
        });
        var before = change.Before;
        bool hadFrom = before is { Subscription: Subscription.From or Subscription.Both };
        if (hadFrom)
        {
            // §3.2.2: while the contact is still subscribed, each available resource goes unavailable for them.
            foreach (var e in directory.Get(user).Available())
                await router.RouteAsync(Stanza("unavailable", e.Jid, contact), null);
        }
        // §3.4: withdrawing only a pre-approval concerns nobody else.
        if (!hadFrom && before is { PendingIn: false, PreApproved: true }) return;
        await router.RouteAsync(stanza, null);
    }

    // ---- Inbound: a subscription stanza reaches a local account (Appendix A.3) ----

    private async ValueTask InboundSubscriptionAsync(StanzaContext c)
    {
        var stanza = c.Stanza;
        var owner = c.To!.Bare;
        var sender = c.From.Bare;
        if (owner == sender) return;
        stanza.SetAttr("from", sender.ToString()).SetAttr("to", owner.ToString());
        switch (c.Type)
        {
            case "subscribe": await InboundSubscribeAsync(stanza, owner, sender); break;
            case "subscribed": await InboundSubscribedAsync(stanza, owner, sender); break;
            case "unsubscribe": await InboundUnsubscribeAsync(stanza, owner, sender); break;
            case "unsubscribed": await InboundUnsubscribedAsync(stanza, owner, sender); break;
        }
    }

    /// §3.1.3: a request to the owner; answered at once when already subscribed or pre-approved (§3.4), otherwise
    /// remembered (with its status text) and delivered to every available resource, now and at each later login.
    private async ValueTask InboundSubscribeAsync(Element stanza, Jid owner, Jid sender)
    {
        var status = stanza.ChildText("status", Ns.Client);
        var change = await rosters.ChangeAsync(owner, sender, item => item switch
        {
            { Subscription: Subscription.From or Subscription.Both } => item,
            { PreApproved: true } => item with
            {
                Subscription = WithFrom(item.Subscription), PreApproved = false, PendingIn = false, PendingInStatus = null,
                InRoster = true,
            },
            { PendingIn: true } => item, // A.3.1: a request already pending is neither changed nor delivered again
            null => NewItem(sender) with { PendingIn = true, PendingInStatus = status, InRoster = false },
            _ => item with { PendingIn = true, PendingInStatus = status },
        });
        if (change.Refused)
        {
            metrics.Refuse("roster-size");
            await router.BounceAsync(stanza, StanzaErrors.NotAllowed, "The recipient's roster is full");
            return;
        }
        if (change.Before is { Subscription: Subscription.From or Subscription.Both })
        {
            await router.RouteAsync(Stanza("subscribed", owner, sender), null);
            return;
        }
        if (GainedFrom(change.Before, change.After))
        {
            // Pre-approved: approved on the owner's behalf, without bothering the owner's clients.
            await router.RouteAsync(Stanza("subscribed", owner, sender), null);
            await SendCurrentPresenceAsync(owner, sender);
            return;
        }
        if (change.Changed) await DeliverToAvailableAsync(owner, stanza);
    }

    /// §3.1.6: an approval counts only when the owner asked for it; otherwise it is ignored (A.3.2).
    private async ValueTask InboundSubscribedAsync(Element stanza, Jid owner, Jid sender)
    {
        var change = await rosters.ChangeAsync(owner, sender, item =>
            item is { AskOut: true, Subscription: Subscription.None or Subscription.From }
                ? item with { Subscription = WithTo(item.Subscription), AskOut = false }
                : item);
        if (change.Changed) await DeliverToAvailableAsync(owner, stanza);
    }

    /// §3.3.3: the sender no longer wants the owner's presence (or withdraws a pending request).
    private async ValueTask InboundUnsubscribeAsync(Element stanza, Jid owner, Jid sender)
    {
        var change = await rosters.ChangeAsync(owner, sender, item =>
        {
            if (item is null) return null;
            if (item.Subscription is not (Subscription.From or Subscription.Both) && !item.PendingIn) return item;
            var next = item with { Subscription = WithoutFrom(item.Subscription), PendingIn = false, PendingInStatus = null };
            return next.InRoster ? next : null;
        });
        if (!change.Changed) return;
        await DeliverToAvailableAsync(owner, stanza);
        if (change.Before is { Subscription: Subscription.From or Subscription.Both })
        {
            // §3.3.3 step 3: the former subscriber sees each of the owner's resources go unavailable.
            foreach (var e in directory.Get(owner).Available())
                await router.RouteAsync(Stanza("unavailable", e.Jid, sender), null);
        }
    }

    /// §3.2.3: the sender cancelled the owner's subscription or denied the owner's request.
    private async ValueTask InboundUnsubscribedAsync(Element stanza, Jid owner, Jid sender)
    {
        var change = await rosters.ChangeAsync(owner, sender, item =>
            item is not null && (item.Subscription is Subscription.To or Subscription.Both || item.AskOut)
                ? item with { Subscription = WithoutTo(item.Subscription), AskOut = false }
                : item);
        if (change.Changed) await DeliverToAvailableAsync(owner, stanza);
    }

    // ---- Shared steps ----

    /// §3.1.3: requests not yet answered are delivered again to each resource that becomes available.
    private async ValueTask DeliverPendingRequestsAsync(ISession session)
    {
        var user = session.Jid.Bare;
        if (directory.Find(session.Jid) is not { } self) return;
        foreach (var item in await rosters.ItemsAsync(user))
        {
            if (!item.PendingIn || item.Subscription is Subscription.From or Subscription.Both) continue;
            var request = new Element("presence", Ns.Client)
                .SetAttr("type", "subscribe").SetAttr("from", item.Jid).SetAttr("to", user.ToString());
            if (!string.IsNullOrEmpty(item.PendingInStatus))
                request.Add(new Element("status", Ns.Client).SetText(item.PendingInStatus));
            await router.DeliverAsync(self, request);
        }
    }

    private async ValueTask SendCurrentPresenceAsync(Jid owner, Jid subscriber)
    {
        // A local subscriber who logged in on another node a moment ago: the shared directory is asked (which brings
        // this node's copy up to date), so the presence routed below reaches it rather than being dropped.
        if (IsLocal(subscriber) && !directory.Get(subscriber).Available().Any()) await directory.GetConfirmedAsync(subscriber);
        foreach (var e in directory.Get(owner).Available())
        {
            if (e.Presence is not { } last) continue;
            await router.RouteAsync(last.Clone().SetAttr("from", e.Jid.ToString()).SetAttr("to", subscriber.ToString()), null);
        }
    }

    /// §3.1.3: with no available resource the request is only remembered until the next login, so a cluster node
    /// first checks the shared directory for a resource another node made available a moment ago.
    private async ValueTask DeliverToAvailableAsync(Jid owner, Element stanza)
    {
        var set = directory.Get(owner);
        if (!set.Available().Any()) set = await directory.GetConfirmedAsync(owner);
        foreach (var e in set.Available())
            await router.DeliverAsync(e, stanza.Clone());
    }

    private static RosterItem NewItem(Jid contact) =>
        new(contact.ToString(), null, Array.Empty<string>(), Subscription.None,
            AskOut: false, PendingIn: false, PreApproved: false, InRoster: true);

    private static bool GainedFrom(RosterItem? before, RosterItem? after) =>
        before is not { Subscription: Subscription.From or Subscription.Both }
        && after is { Subscription: Subscription.From or Subscription.Both };

    private static Subscription WithFrom(Subscription s) => s switch
    {
        Subscription.None => Subscription.From,
        Subscription.To => Subscription.Both,
        _ => s,
    };

    private static Subscription WithTo(Subscription s) => s switch
    {
        Subscription.None => Subscription.To,
        Subscription.From => Subscription.Both,
        _ => s,
    };

    private static Subscription WithoutFrom(Subscription s) => s switch
    {
        Subscription.From => Subscription.None,
        Subscription.Both => Subscription.To,
        _ => s,
    };

    private static Subscription WithoutTo(Subscription s) => s switch
    {
        Subscription.To => Subscription.None,
        Subscription.Both => Subscription.From,
        _ => s,
    };
}
