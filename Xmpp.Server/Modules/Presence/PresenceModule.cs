// RFC 6121 §4: exchanging presence (initial, updates, unavailable, directed, probes); §3 is in the .Subscriptions part.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Presence;

/// Presence for local accounts. A client's broadcast presence is taken here and fanned out to the roster's
/// subscribers and the account's own resources; directed presence goes on to the router and is remembered;
/// subscription stanzas run the RFC 6121 §3 state machine on both rosters. Presence of contacts addressed to a local
/// account is left to the router, which delivers it to the addressed or all available resources.
[Xep("RFC 6121", "§3, §4")]
public sealed partial class PresenceModule(
    IRosterService rosters,
    ISessionDirectory directory,
    IRouter router,
    AccountService accounts,
    ServedDomains domains,
    SessionEvents sessionEvents,
    XmppServerOptionsAccessor options,
    Metrics.ServerMetrics metrics) : IXmppModule
{
    // Xmpp:RateLimits:SubscriptionRequestsPerMinute, per account: a flood of requests to many addresses.
    private readonly Limits.RateLimiter _subscribeRate = new(
        options.Value.RateLimits.SubscriptionRequestsPerMinute / 60, options.Value.RateLimits.SubscriptionRequestBurst);

    /// Late in the chain: hooks that filter or annotate presence (blocking, caps) run before the module delivers it.
    public const int HookOrder = 1000;

    public void Register(IModuleBuilder module)
    {
        module.StreamFeature(StreamFeatureStage.PostAuth, _ => new Element("sub", Ns.PreApproval));
        module.Hook(HookPoint.OutboundPresence, HookOrder, OutboundAsync);
        module.Hook(HookPoint.InboundPresence, HookOrder, InboundAsync);
        module.OnSessionClosed(SessionClosedAsync);
        if (WatchesWindow) directory.RemoteAvailable += OnRemoteAvailable;
    }

    private async ValueTask<bool> OutboundAsync(StanzaContext c)
    {
        if (c.Origin is not { } session) return false;
        switch (c.Type)
        {
            case "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed":
                await OutboundSubscriptionAsync(c, session);
                return true;
            case "probe":
                // RFC 6121 §4.3: probes are the server's business; a client's probe is answered from what we know.
                await AnswerClientProbeAsync(c, session);
                return true;
            case "error":
                return false; // routed to its addressee like any directed stanza
            case null or "unavailable" when c.To is null:
                await BroadcastPresenceAsync(c.Stanza, session);
                return true;
            default:
                RememberDirected(c, session);
                return false;
        }
    }

    private async ValueTask<bool> InboundAsync(StanzaContext c)
    {
        if (c.To is null) return false;
        switch (c.Type)
        {
            case "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed":
                await InboundSubscriptionAsync(c);
                return true;
            case "probe":
                await AnswerProbeAsync(c.From.Bare, c.From, c.To.Bare);
                return true;
            default:
                // Availability and errors (RFC 6121 §4.3.3, §4.4.3, §4.5.3, §8.5.2.1.2): the router delivers them.
                return false;
        }
    }

    // ---- Broadcast presence: initial (§4.2), updates (§4.4), unavailable (§4.5) ----

    private async ValueTask BroadcastPresenceAsync(Element stanza, ISession session)
    {
        var state = session.State<PresenceState>();
        var presence = stanza.Clone().SetAttr("to", null).SetAttr("from", session.Jid.ToString());
        if (presence.Attr("type") == "unavailable")
        {
            await GoUnavailableAsync(session, state, presence);
            return;
        }
        bool initial = !state.Available;
        int priority = Priority(presence);
        var stored = presence.Clone();
        if (directory.Update(session, e => e with { Available = true, Priority = priority, Presence = stored }) is null)
            return; // the session is no longer bound: nothing to announce
        state.SetAvailable(stored);
        // In a cluster, before anyone hears of it: any node that then looks this resource up in the shared directory
        // finds it available (a message or subscription request sent in reply is delivered, not stored for later).
        if (initial) await directory.PublishedAsync(session);
        // §4.2.2, §4.4.2: to every subscriber, and to all of the account's available resources including this one
        // (an account is implicitly subscribed to its own presence).
        await BroadcastAsync(session.Jid, presence, includeSender: true);
        if (!initial) return;
        await ProbeContactsAsync(session);
        await DeliverPendingRequestsAsync(session);
        await sessionEvents.RaiseAvailableAsync(session);
    }

    private async ValueTask GoUnavailableAsync(ISession session, PresenceState state, Element presence)
    {
        if (!state.Available)
        {
            // Never available: only the entities it sent directed presence to have something to forget (§4.6.3).
            await NotifyDirectedAsync(session.Jid, state, presence, []);
            if (WatchesWindow) PublishDirected(session, state);
            return;
        }
        directory.Update(session, e => e with { Available = false, Presence = null });
        state.SetUnavailable(presence.Clone());
        var told = await BroadcastAsync(session.Jid, presence, includeSender: false);
        await NotifyDirectedAsync(session.Jid, state, presence, told);
        if (WatchesWindow) PublishDirected(session, state);
    }

    /// The session ended: without an explicit unavailable the server sends one on its behalf (RFC 6121 §4.5.2, and
    /// §4.6.3 for directed presence), carrying the last status text.
    private async ValueTask SessionClosedAsync(ISession session)
    {
        var state = session.State<PresenceState>();
        var user = session.Jid.Local!;
        if (state.Available)
        {
            var unavailable = new Element("presence", Ns.Client)
                .SetAttr("type", "unavailable").SetAttr("from", session.Jid.ToString());
            if (state.Last is { } last)
                foreach (var status in last.Elements("status", Ns.Client)) unavailable.Add(status.Clone());
            state.SetUnavailable(unavailable);
            var told = await BroadcastAsync(session.Jid, unavailable, includeSender: false);
            await NotifyDirectedAsync(session.Jid, state, unavailable, told);
            await accounts.RecordLogoutAsync(user, StatusText(unavailable));
            return;
        }
        var directedEnd = new Element("presence", Ns.Client).SetAttr("type", "unavailable").SetAttr("from", session.Jid.ToString());
        await NotifyDirectedAsync(session.Jid, state, directedEnd, []);
        if (state.WasAvailable) await accounts.RecordLogoutAsync(user, state.Last is { } l ? StatusText(l) : null);
    }

    /// Sends a presence from one resource to the subscribers in its roster and to the account's available resources;
    /// returns the contacts (bare JIDs) reached through the roster.
    /// A session that ended with no one on its node left to say so (the node died; in a cluster, the survivor that
    /// cleans up calls this): its contacts and the account's other resources get the unavailable presence its end
    /// would have sent (RFC 6121 §4.5.2), and so do the entities it sent directed presence to (§4.6.3; the session's
    /// entry lists them in a cluster). available: it had sent initial presence.
    public async ValueTask AnnounceGoneAsync(Jid full, Element? lastPresence, bool available = true, IReadOnlyList<string>? directed = null)
    {
        var unavailable = new Element("presence", Ns.Client).SetAttr("type", "unavailable").SetAttr("from", full.ToString());
        if (lastPresence is not null)
            foreach (var status in lastPresence.Elements("status", Ns.Client)) unavailable.Add(status.Clone());
        var told = available ? await BroadcastAsync(full, unavailable, includeSender: false) : new HashSet<string>(StringComparer.Ordinal);
        foreach (var target in directed ?? Array.Empty<string>())
        {
            if (!Jid.TryParse(target, out var jid) || jid is null) continue;
            if (jid.Bare == full.Bare || told.Contains(jid.Bare.ToString())) continue;
            await router.RouteAsync(unavailable.Clone().SetAttr("to", target), null);
        }
        if (available) await accounts.RecordLogoutAsync(full.Local!, StatusText(unavailable));
    }

    private async ValueTask<HashSet<string>> BroadcastAsync(Jid from, Element presence, bool includeSender)
    {
        var user = from.Bare;
        var userText = user.ToString();
        var fromText = from.ToString();
        var told = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in await rosters.ItemsAsync(user))
        {
            if (!item.InRoster || item.Subscription is not (Subscription.From or Subscription.Both)) continue;
            if (item.Jid == userText || !told.Add(item.Jid)) continue;
            await router.RouteAsync(presence.Clone().SetAttr("from", fromText).SetAttr("to", item.Jid), null);
        }
        foreach (var e in directory.Get(user).Available())
        {
            if (!includeSender && e.Jid == from) continue;
            await router.DeliverAsync(e, presence.Clone().SetAttr("from", fromText).SetAttr("to", e.Jid.ToString()));
        }
        return told;
    }

    // ---- Directed presence (§4.6) ----

    private void RememberDirected(StanzaContext c, ISession session)
    {
        var to = c.To!.ToString();
        var state = session.State<PresenceState>();
        // §4.6.3: the server remembers where directed availability went, so the session's end reaches there too.
        if (c.Type == "unavailable") state.RemoveDirected(to);
        else state.AddDirected(to);
        // In a cluster also in the session's entry: if this node dies, the node that cleans up tells them.
        if (WatchesWindow) PublishDirected(session, state);
    }

    private void PublishDirected(ISession session, PresenceState state)
    {
        var directed = state.Directed();
        directory.Update(session, e => e with { Directed = directed.Length == 0 ? null : directed });
    }

    private async ValueTask NotifyDirectedAsync(Jid from, PresenceState state, Element unavailable, HashSet<string> told)
    {
        var user = from.Bare;
        foreach (var target in state.TakeDirected())
        {
            if (!Jid.TryParse(target, out var jid) || jid is null) continue;
            // Contacts told through the roster, and the account's own resources, already have it.
            if (jid.Bare == user || told.Contains(jid.Bare.ToString())) continue;
            await router.RouteAsync(unavailable.Clone().SetAttr("from", from.ToString()).SetAttr("to", target), null);
        }
    }

    // ---- Probes (§4.3) ----

    /// At initial presence: the current presence of every contact the user is subscribed to, and of the user's own
    /// other resources, goes to the new resource (§4.2.2).
    private async ValueTask ProbeContactsAsync(ISession session)
    {
        var user = session.Jid.Bare;
        var items = await rosters.ItemsAsync(user);
        // Before the probes: a contact whose login this node learns of from now on is told to this session too.
        if (WatchesWindow) RememberContacts(session, items);
        foreach (var item in items)
        {
            if (!item.InRoster || item.Subscription is not (Subscription.To or Subscription.Both)) continue;
            if (!Jid.TryParse(item.Jid, out var contact) || contact is null || contact.Bare == user) continue;
            if (IsLocal(contact)) await AnswerProbeAsync(user, session.Jid, contact.Bare);
            else await router.RouteAsync(Stanza("probe", user, contact.Bare), null);
        }
        await SendOwnResourcesAsync(session);
    }

    private async ValueTask AnswerClientProbeAsync(StanzaContext c, ISession session)
    {
        var user = session.Jid.Bare;
        var target = c.To?.Bare ?? user;
        if (target == user)
        {
            await SendOwnResourcesAsync(session);
            return;
        }
        if (IsLocal(target)) await AnswerProbeAsync(user, session.Jid, target);
        else await router.RouteAsync(Stanza("probe", user, target), null);
    }

    /// RFC 6121 §4.3.2 at the contact's (local) server: the contact's available resources answer when the prober is
    /// subscribed; otherwise the prober is told it is not, which also repairs a roster that drifted out of step.
    /// A contact with no available resource sends nothing (the second option of §4.3.2).
    private async ValueTask AnswerProbeAsync(Jid proberBare, Jid replyTo, Jid contact)
    {
        if (contact.Local is null || proberBare == contact) return;
        bool subscribed = await accounts.ExistsAsync(contact.Local)
            && await rosters.FindAsync(contact, proberBare) is { InRoster: true, Subscription: Subscription.From or Subscription.Both };
        if (!subscribed)
        {
            await router.RouteAsync(Stanza("unsubscribed", contact, proberBare), null);
            return;
        }
        foreach (var e in directory.Get(contact).Available())
        {
            if (e.Presence is not { } last) continue;
            await router.RouteAsync(last.Clone().SetAttr("from", e.Jid.ToString()).SetAttr("to", replyTo.ToString()), null);
        }
    }

    private async ValueTask SendOwnResourcesAsync(ISession session)
    {
        var set = directory.Get(session.Jid.Bare);
        if (set.Find(session.Jid.Resource!) is not { } self) return;
        foreach (var e in set.Available())
        {
            if (ReferenceEquals(e.Sink, session) || e.Presence is not { } last) continue;
            await router.DeliverAsync(self, last.Clone().SetAttr("from", e.Jid.ToString()).SetAttr("to", session.Jid.ToString()));
        }
    }

    // ---- Helpers ----

    private bool IsLocal(Jid jid) => domains.Contains(jid.Domain);

    /// RFC 6121 §4.7.2.3: an integer from -128 to 127, zero when absent; a malformed value counts as absent.
    private static int Priority(Element presence)
    {
        var text = presence.ChildText("priority", Ns.Client);
        return text is not null && int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p)
            && p is >= -128 and <= 127 ? p : 0;
    }

    private static string? StatusText(Element presence) => presence.ChildText("status", Ns.Client) is { Length: > 0 } s ? s : null;

    private static Element Stanza(string type, Jid from, Jid to) => new Element("presence", Ns.Client)
        .SetAttr("type", type).SetAttr("from", from.ToString()).SetAttr("to", to.ToString());
}
