// RFC 6121 §2: roster storage access, per-account serialization and roster pushes.
using System.Collections.Concurrent;
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Caching;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Roster;

/// Owns every write to the roster store. Changes to one account's roster are serialized by a per-account lock, so the
/// read-modify-write of the subscription state machine never loses an update and pushes leave in version order.
public sealed class RosterService : IRosterService
{
    /// The name under which roster changes are announced to the other nodes of a cluster.
    public const string CacheName = "roster";

    private readonly IStorage storage;
    private readonly ISessionDirectory directory;
    private readonly IRouter router;
    private readonly Hosting.XmppServerOptionsAccessor options;
    private readonly ICacheInvalidation _invalidation;

    public RosterService(IStorage storage, ISessionDirectory directory, IRouter router, Hosting.XmppServerOptionsAccessor options,
        ICacheInvalidation invalidation)
    {
        this.storage = storage;
        this.directory = directory;
        this.router = router;
        this.options = options;
        _invalidation = invalidation;
        // Another node changed a roster: its snapshot goes here too, and reads under way do not keep theirs.
        invalidation.Subscribe(CacheName, key =>
        {
            lock (_cacheLock)
            {
                _writes++;
                if (key is null) _cache.Clear();
                else _cache.TryRemove(key, out _);
            }
        });
    }

    // The gate serialises one node's read-modify-write of an account's items. Two nodes changing the same item at
    // once (the account's roster set on one, a contact's subscription stanza on another) are kept apart by the
    // store: SetItemAsync and RemoveItemAsync each run in one PostgreSQL transaction that locks the account's roster
    // version row, so versions never repeat; see docs/cluster-seams.md for what that does and does not cover.
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private long _pushSeq;

    private IRosterStore Store => storage.Rosters;

    /// The storage key of an account: its local part, as AccountService keys accounts by username.
    public static string UserKey(Jid user) =>
        user.Local ?? throw new ArgumentException("A roster belongs to an account JID with a local part.", nameof(user));

    /// Roster items are keyed by the contact's JID as normalized text; subscriptions only ever concern bare JIDs.
    public static string ContactKey(Jid contact) => contact.ToString();

    // Rosters as last read, until they change: a login reads its roster four times (the client's roster get, then the
    // broadcast, probes and pending requests of its initial presence), and each read was a LiteDB query, ~8 % of a
    // login's server CPU (bench/profiles/2026-12-02-login.md). Every write goes through this service and drops the
    // account's snapshot once the store has it; a read that overlapped any write does not keep what it read, so a
    // snapshot from before a change can never outlive it. Bounded: past MaxCached accounts the cache starts over.
    private const int MaxCached = 10_000;
    private readonly ConcurrentDictionary<string, RosterSnapshot> _cache = new(StringComparer.Ordinal);
    private readonly Lock _cacheLock = new();
    private long _writes;

    public ValueTask<RosterSnapshot> SnapshotAsync(Jid user) => ReadAsync(UserKey(user));

    public async ValueTask<RosterItem?> FindAsync(Jid user, Jid contact)
    {
        var key = UserKey(user);
        if (!_cache.TryGetValue(key, out var snapshot)) return await Store.GetItemAsync(key, ContactKey(contact));
        var contactKey = ContactKey(contact);
        foreach (var item in snapshot.Items)
            if (item.Jid == contactKey) return item;
        return null;
    }

    public async ValueTask<IReadOnlyList<RosterItem>> ItemsAsync(Jid user) => (await ReadAsync(UserKey(user))).Items;

    private ValueTask<RosterSnapshot> ReadAsync(string key) =>
        _cache.TryGetValue(key, out var snapshot) ? ValueTask.FromResult(snapshot) : ReadStoredAsync(key);

    private async ValueTask<RosterSnapshot> ReadStoredAsync(string key)
    {
        var writesBefore = Volatile.Read(ref _writes);
        var snapshot = await Store.GetAsync(key);
        lock (_cacheLock)
        {
            if (_writes == writesBefore)
            {
                if (_cache.Count >= MaxCached) _cache.Clear();
                _cache[key] = snapshot;
            }
        }
        return snapshot;
    }

    // Under the account's gate, so no write of this account runs meanwhile; read without filling the cache, which
    // only reads outside the gates may do (see ReadStoredAsync).
    private async ValueTask<int> CountAsync(string key) =>
        _cache.TryGetValue(key, out var snapshot) ? snapshot.Items.Count : (await Store.GetAsync(key)).Items.Count;

    // After every write to the store: the account's snapshot goes, and reads under way do not keep theirs.
    private void Changed(string key)
    {
        lock (_cacheLock)
        {
            _writes++;
            _cache.TryRemove(key, out _);
        }
    }

    public async ValueTask<RosterChange> ChangeAsync(Jid user, Jid contact, Func<RosterItem?, RosterItem?> change)
    {
        var key = UserKey(user);
        var contactKey = ContactKey(contact);
        var gate = _locks.GetOrAdd(key, static _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        try
        {
            // Items only the server keeps (a stranger's pending request) count too: a flood of requests from many
            // addresses must not grow a roster without bound. Counted only when this change would add an item; in a
            // cluster the count may be a few items stale, which a limit tolerates.
            bool full = false;
            if (options.Value.Limits.MaxRosterItems is > 0 and var max && await Store.GetItemAsync(key, contactKey) is null
                && change(null) is not null)
                full = await CountAsync(key) >= max;
            bool refused = false;
            RosterItem? before, after;
            string? version;
            bool wrote = true; // unknown if the store fails
            try
            {
                // One read-modify-write in the store: two cluster nodes changing this contact of this account at the
                // same moment (a roster set on one, the contact's subscription stanza on the other) both count, each
                // computed from the other's result (IRosterStore.ChangeItemAsync). May run more than once: it only computes.
                (before, after, version) = await Store.ChangeItemAsync(key, contactKey, stored =>
                {
                    refused = false;
                    var next = change(stored);
                    if (ReferenceEquals(stored, next)) return stored;
                    if (stored is null && next is not null && full)
                    {
                        refused = true;
                        return stored;
                    }
                    return next is not null && next.Jid != contactKey ? next with { Jid = contactKey } : next;
                });
                wrote = !ReferenceEquals(before, after);
            }
            finally
            {
                // Also when the write failed: whether the store has it is then unknown.
                if (wrote)
                {
                    Changed(key);
                    // Before the push and the caller's result: other nodes route presence by the new roster from now on.
                    await _invalidation.ChangedAsync(CacheName, key);
                }
            }
            if (refused) return new RosterChange(null, null, null) { Refused = true };
            if (ReferenceEquals(before, after)) return new RosterChange(before, before, null);
            if (VisiblyDiffers(before, after))
            {
                // RFC 6121 §2.1.6: a visible change is pushed to every interested resource; an item that leaves the
                // roster is pushed with subscription='remove'.
                var pushed = after is { InRoster: true } ? ItemElement(after) : RemovedElement(contactKey);
                await PushAsync(user.Bare, pushed, version);
            }
            return new RosterChange(before, after, version);
        }
        finally
        {
            gate.Release();
        }
    }

    public async ValueTask DeleteAllAsync(string username)
    {
        try
        {
            await Store.DeleteAllAsync(username);
        }
        finally
        {
            Changed(username);
            await _invalidation.ChangedAsync(CacheName, username);
        }
    }

    /// Sends a roster push to every resource of the account that has requested the roster (an "interested resource").
    private async ValueTask PushAsync(Jid bare, Element item, string? version)
    {
        foreach (var entry in directory.Get(bare).Entries)
        {
            if (!entry.RosterRequested) continue;
            var query = new Element("query", Ns.Roster).Add(item.Clone());
            if (version is not null) query.SetAttr("ver", version); // XEP-0237 §4: every push carries the new version
            var id = "push" + Interlocked.Increment(ref _pushSeq).ToString(CultureInfo.InvariantCulture);
            var push = new Element("iq", Ns.Client)
                .SetAttr("type", "set").SetAttr("id", id)
                .SetAttr("from", bare.ToString()).SetAttr("to", entry.Jid.ToString())
                .Add(query);
            await router.DeliverAsync(entry, push);
        }
    }

    private static bool VisiblyDiffers(RosterItem? before, RosterItem? after)
    {
        bool wasVisible = before is { InRoster: true }, isVisible = after is { InRoster: true };
        if (!wasVisible && !isVisible) return false;
        if (wasVisible != isVisible) return true;
        return before!.Name != after!.Name
            || before.Subscription != after.Subscription
            || before.AskOut != after.AskOut
            || before.PreApproved != after.PreApproved
            || !before.Groups.SequenceEqual(after.Groups, StringComparer.Ordinal);
    }

    /// The RFC 6121 §2.1.2 item element: jid, name, subscription, ask and approved, then the groups.
    public static Element ItemElement(RosterItem item)
    {
        var e = new Element("item", Ns.Roster).SetAttr("jid", item.Jid);
        if (!string.IsNullOrEmpty(item.Name)) e.SetAttr("name", item.Name);
        e.SetAttr("subscription", SubscriptionName(item.Subscription));
        if (item.AskOut) e.SetAttr("ask", "subscribe");
        if (item.PreApproved) e.SetAttr("approved", "true"); // §3.4: shown to clients that understand pre-approval
        foreach (var group in item.Groups) e.Add(new Element("group", Ns.Roster).SetText(group));
        return e;
    }

    private static Element RemovedElement(string jid) =>
        new Element("item", Ns.Roster).SetAttr("jid", jid).SetAttr("subscription", "remove");

    public static string SubscriptionName(Subscription subscription) => subscription switch
    {
        Subscription.To => "to",
        Subscription.From => "from",
        Subscription.Both => "both",
        _ => "none",
    };
}
