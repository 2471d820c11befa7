// XEP-0191: Blocking Command. The list and its commands are here; enforcement on the routing path is in .Enforcement.
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Caching;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Blocking;

/// A user's blocklist: retrieved, extended and shrunk by the XEP-0191 commands, stored durably, pushed to the
/// user's interested resources, and held in memory per account so that checking a stanza costs no storage read.
[Xep("XEP-0191", "1.3")]
public sealed partial class BlockingModule(
    IStorage storage,
    IRouter router,
    ISessionDirectory directory,
    IRosterService rosters,
    AccountService accounts,
    ServedDomains domains,
    AbuseReports reports,
    ICacheInvalidation invalidation,
    ILogger<BlockingModule> logger) : IXmppModule
{
    public const string Key = "blocklist";

    /// The name under which blocklist changes are announced to the other nodes of a cluster.
    public const string CacheName = "blocklist";

    /// More than any person blocks by hand; a bound on what one account keeps in memory.
    public const int MaxItems = 5000;

    /// Early: a blocked stanza is refused before any other module spends work on it.
    public const int HookOrder = 100;

    private readonly ConcurrentDictionary<string, BlockList> _lists = new(StringComparer.Ordinal);
    private long _drops; // entries other nodes changed, counted so a load that overlapped one does not keep its copy
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    // Presence this module itself sends on block and unblock, which its own presence check must let through.
    private readonly ConditionalWeakTable<Element, object> _exempt = new();
    private long _pushSeq;

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Blocking);
        module.ServerFeature(Ns.Reporting);
        module.Iq(IqTarget.Self, "blocklist", Ns.Blocking, GetAsync);
        module.Iq(IqTarget.Self, "block", Ns.Blocking, BlockAsync);
        module.Iq(IqTarget.Self, "unblock", Ns.Blocking, UnblockAsync);
        module.Hook(HookPoint.Inbound, HookOrder, InboundAsync);
        module.Hook(HookPoint.FromRemote, HookOrder, FromRemoteAsync);
        module.Hook(HookPoint.InboundPresence, HookOrder, InboundPresenceAsync);
        module.OnAccountDeleted(async user =>
        {
            _lists.TryRemove(user, out _);
            await storage.KeyValue.DeleteAsync(user, Key);
            await invalidation.ChangedAsync(CacheName, user);
        });
        // XEP-0191 §3.3: a block made through another node must stop stanzas handled here at once.
        invalidation.Subscribe(CacheName, user =>
        {
            Interlocked.Increment(ref _drops);
            if (user is null) _lists.Clear();
            else _lists.TryRemove(user, out _);
        });
    }

    // ---- Commands (XEP-0191 §3.2-§3.5) ----

    private async ValueTask GetAsync(IqContext c)
    {
        if (!c.IsGet)
        {
            c.Error(StanzaErrors.BadRequest);
            return;
        }
        var list = await ListAsync(c.From.Local!);
        if (c.Origin is { } origin) directory.SetBlocklistRequested(origin);
        c.Result(ItemsElement("blocklist", list.Items));
    }

    private async ValueTask BlockAsync(IqContext c)
    {
        if (!TryReadItems(c, out var items)) return;
        if (items.Count == 0)
        {
            // §3.3: a block without an item is a bad request.
            c.Error(StanzaErrors.BadRequest, "Name at least one JID to block");
            return;
        }
        if (!TryReadReports(c, out var reported)) return;
        var user = c.From.Bare;
        BlockList before;
        bool full = false;
        var gate = Gate(user.Local!);
        await gate.WaitAsync();
        try
        {
            BlockList after;
            (before, after) = await ChangeAsync(user.Local!, list => list.With(items.Select(j => j.ToString())));
            full = after.Count > MaxItems;
        }
        finally
        {
            gate.Release();
        }
        if (full)
        {
            c.Error(StanzaErrors.NotAcceptable, $"A blocklist holds at most {MaxItems} JIDs");
            return;
        }
        // The result confirms the reports too: they are stored before it goes out.
        foreach (var report in reported) await KeepReportAsync(user, report);
        c.Result();
        await PushAsync(user, ItemsElement("block", items.Select(j => j.ToString())));
        var added = items.Where(j => !before.Contains(j.ToString())).ToList();
        if (added.Count > 0) await AnnounceBlockAsync(user, BlockList.Of(added.Select(j => j.ToString())));
    }

    private async ValueTask UnblockAsync(IqContext c)
    {
        if (!TryReadItems(c, out var items)) return;
        var user = c.From.Bare;
        BlockList before, after;
        var gate = Gate(user.Local!);
        await gate.WaitAsync();
        try
        {
            // §3.5: an unblock without items unblocks everyone.
            (before, after) = await ChangeAsync(user.Local!, list => items.Count == 0 ? BlockList.Empty : list.Without(items.Select(j => j.ToString())));
        }
        finally
        {
            gate.Release();
        }
        c.Result();
        await PushAsync(user, ItemsElement("unblock", items.Select(j => j.ToString())));
        var removed = before.Items.Where(i => !after.Contains(i)).ToList();
        if (removed.Count > 0) await AnnounceUnblockAsync(user, BlockList.Of(removed), after);
    }

    /// Reads the items of a block or unblock; answers the IQ and returns false when one is unusable.
    private static bool TryReadItems(IqContext c, out List<Jid> items)
    {
        items = [];
        if (!c.IsSet)
        {
            c.Error(StanzaErrors.BadRequest);
            return false;
        }
        foreach (var item in c.Payload.Elements("item", Ns.Blocking))
        {
            var text = item.Attr("jid");
            if (text is null)
            {
                c.Error(StanzaErrors.BadRequest, "Each item needs a 'jid'");
                return false;
            }
            if (!Jid.TryParse(text, out var jid))
            {
                c.Error(StanzaErrors.JidMalformed, $"'{text}' is not a valid JID");
                return false;
            }
            items.Add(jid);
        }
        return true;
    }

    /// §3.3, §3.4, §3.5: the change goes to every resource of the user that retrieved the blocklist.
    private async ValueTask PushAsync(Jid user, Element payload)
    {
        foreach (var entry in directory.Get(user).Entries)
        {
            if (!entry.BlocklistRequested) continue;
            var id = "block" + Interlocked.Increment(ref _pushSeq).ToString(CultureInfo.InvariantCulture);
            var push = new Element("iq", Ns.Client)
                .SetAttr("type", "set").SetAttr("id", id)
                .SetAttr("from", user.ToString()).SetAttr("to", entry.Jid.ToString())
                .Add(payload.Clone());
            await router.DeliverAsync(entry, push);
        }
    }

    // ---- Presence when blocking and unblocking ----

    /// §3.3: contacts subscribed to the user's presence see each available resource go unavailable. The user's
    /// own resources likewise see the blocked contact go unavailable, since its presence no longer reaches them.
    private async ValueTask AnnounceBlockAsync(Jid user, BlockList added)
    {
        var mine = directory.Get(user).Available().ToList();
        foreach (var (contact, item) in await MatchingContactsAsync(user, added))
        {
            if (item.Subscription is Subscription.From or Subscription.Both)
                foreach (var e in mine)
                    await RouteExemptAsync(Presence("unavailable", e.Jid, contact));
            if (item.Subscription is Subscription.To or Subscription.Both && IsLocal(contact))
                foreach (var e in directory.Get(contact).Available())
                    await RouteExemptAsync(Presence("unavailable", e.Jid, user));
        }
    }

    /// §3.4: contacts subscribed to the user's presence get its current presence again; and the user, if
    /// subscribed to theirs, gets theirs through a probe, as at login (RFC 6121 §4.3).
    private async ValueTask AnnounceUnblockAsync(Jid user, BlockList removed, BlockList remaining)
    {
        var mine = directory.Get(user).Available().ToList();
        foreach (var (contact, item) in await MatchingContactsAsync(user, removed))
        {
            if (remaining.Matches(contact)) continue; // still blocked through another item (a domain, say)
            if (item.Subscription is Subscription.From or Subscription.Both)
                foreach (var e in mine)
                    if (e.Presence is { } last)
                        await router.RouteAsync(last.Clone().SetAttr("from", e.Jid.ToString()).SetAttr("to", contact.ToString()), null);
            if (item.Subscription is Subscription.To or Subscription.Both && mine.Count > 0)
                await router.RouteAsync(Presence("probe", user, contact), null);
        }
    }

    private async ValueTask<List<(Jid Contact, RosterItem Item)>> MatchingContactsAsync(Jid user, BlockList items)
    {
        var found = new List<(Jid, RosterItem)>();
        foreach (var item in await rosters.ItemsAsync(user))
        {
            if (!item.InRoster || !Jid.TryParse(item.Jid, out var contact) || contact.Bare == user) continue;
            if (items.Matches(contact)) found.Add((contact, item));
        }
        return found;
    }

    private ValueTask RouteExemptAsync(Element presence)
    {
        _exempt.AddOrUpdate(presence, this);
        return router.RouteAsync(presence, null);
    }

    // ---- The cached lists ----

    /// The user's blocklist: from memory, or loaded once from storage.
    private async ValueTask<BlockList> ListAsync(string user)
    {
        if (_lists.TryGetValue(user, out var list)) return list;
        var gate = Gate(user);
        await gate.WaitAsync();
        try
        {
            return await LoadAsync(user);
        }
        finally
        {
            gate.Release();
        }
    }

    /// Under the user's gate: the cached list, or the stored one, which is then cached.
    private async ValueTask<BlockList> LoadAsync(string user)
    {
        if (_lists.TryGetValue(user, out var list)) return list;
        long drops = Volatile.Read(ref _drops);
        var bytes = await storage.KeyValue.GetAsync(user, Key);
        list = bytes is null ? BlockList.Empty : BlockList.Parse(bytes);
        _lists[user] = list;
        // Dropped meanwhile by another node's change: what was read may predate it, so it is not kept.
        if (Volatile.Read(ref _drops) != drops) _lists.TryRemove(new KeyValuePair<string, BlockList>(user, list));
        return list;
    }

    /// Under the user's gate: the change applied to the stored list as one step of the store, since another node may
    /// change the same list at the same moment (a per-node gate alone would lose one of the two); then cached here and
    /// announced to the other nodes, so what a check sees has been written. A list the change would take past
    /// MaxItems stays as stored; the caller refuses it.
    private async ValueTask<(BlockList Before, BlockList After)> ChangeAsync(string user, Func<BlockList, BlockList> change)
    {
        BlockList before = BlockList.Empty, after = BlockList.Empty;
        await storage.KeyValue.UpdateAsync(user, Key, stored =>
        {
            before = stored is null ? BlockList.Empty : BlockList.Parse(stored);
            after = change(before);
            if (after.Count > MaxItems || after.Count == before.Count) return stored;
            return after.Count == 0 ? null : after.ToBytes();
        });
        bool changed = after.Count <= MaxItems && after.Count != before.Count;
        _lists[user] = changed ? after : before;
        if (changed)
        {
            await invalidation.ChangedAsync(CacheName, user);
            logger.LogDebug("Blocklist of {User} now holds {Count} JIDs", user, after.Count);
        }
        return (before, after);
    }

    private SemaphoreSlim Gate(string user) => _locks.GetOrAdd(user, static _ => new SemaphoreSlim(1, 1));

    private bool IsLocal(Jid jid) => domains.Contains(jid.Domain);

    private static Element ItemsElement(string name, IEnumerable<string> items)
    {
        var e = new Element(name, Ns.Blocking);
        foreach (var item in items) e.Add(new Element("item", Ns.Blocking).SetAttr("jid", item));
        return e;
    }

    private static Element Presence(string type, Jid from, Jid to) => new Element("presence", Ns.Client)
        .SetAttr("type", type).SetAttr("from", from.ToString()).SetAttr("to", to.ToString());
}
