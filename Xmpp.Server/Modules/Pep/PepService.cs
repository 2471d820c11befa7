// XEP-0163: Personal Eventing Protocol — node storage, publishing and retraction; access in .Access, events in .Notify.
using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Pep;

/// Every account's bare JID as a pubsub service. An account's nodes are loaded on first use and changed under one
/// per-account gate; notifications go out after the gate is released, from an immutable snapshot of the node.
public sealed partial class PepService(
    PepStore store,
    PepCaps caps,
    IRosterService rosters,
    ISessionDirectory directory,
    IRouter router,
    ServedDomains domains,
    XmppServerOptionsAccessor options,
    TimeProvider time,
    Caching.ICacheInvalidation invalidation,
    ILogger<PepService> logger) : IPepService
{
    /// The name under which PEP changes are announced to the other nodes of a cluster (PepStore announces them).
    public const string CacheName = "pep";

    private readonly ConcurrentDictionary<string, PepAccount> _accounts = Coherent(invalidation);
    private long _seq;

    private sealed class PepAccount
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public Dictionary<string, PepNode>? Nodes;
        // Bumped when another node changed the account; Nodes is current only while LoadedAt equals it. The account
        // object (and so its gate) stays, so a drop never lets two changes of one account run at once on this node.
        public long Changes;
        public long LoadedAt;
    }

    // A publish on one node must be seen by retrieval and notifications on another: another node's change marks the
    // account's nodes stale, and the next use reloads them from the database. Items of nodes with persist_items off
    // are never stored, so they stay with the node that received them (see docs/cluster-seams.md).
    private static ConcurrentDictionary<string, PepAccount> Coherent(Caching.ICacheInvalidation invalidation)
    {
        var accounts = new ConcurrentDictionary<string, PepAccount>(StringComparer.Ordinal);
        invalidation.Subscribe(CacheName, user =>
        {
            if (user is null)
                foreach (var account in accounts.Values) Interlocked.Increment(ref account.Changes);
            else if (accounts.TryGetValue(user, out var account)) Interlocked.Increment(ref account.Changes);
        });
        return accounts;
    }

    private PepOptions Options => options.Value.Pep;
    private int ServiceMax => Options.MaxItemsPerNode;
    public DateTimeOffset Now => time.GetUtcNow();

    /// Runs a change or read on an account's nodes under its gate, loading them first if needed.
    private async ValueTask<T> WithNodesAsync<T>(Jid owner, Func<Dictionary<string, PepNode>, ValueTask<T>> action)
    {
        var user = owner.Local ?? throw new ArgumentException("PEP belongs to accounts", nameof(owner));
        var account = _accounts.GetOrAdd(user, static _ => new PepAccount());
        await account.Gate.WaitAsync();
        try
        {
            long changes = Volatile.Read(ref account.Changes);
            if (account.Nodes is null || account.LoadedAt != changes)
            {
                account.Nodes = await LoadAsync(user);
                account.LoadedAt = changes;
            }
            return await action(account.Nodes);
        }
        finally
        {
            account.Gate.Release();
        }
    }

    private async ValueTask<Dictionary<string, PepNode>> LoadAsync(string user)
    {
        var nodes = await store.LoadAsync(user, ServiceMax);
        // Items that expired while the account was not loaded go now, as the sweeper would have removed them.
        foreach (var node in nodes.Values) node.Items.RemoveAll(i => i.IsExpired(node.Config, Now));
        return nodes;
    }

    /// The configuration a node starts with before publish-options or a create form change it.
    public PepNodeConfig DefaultConfig(string node) => node == Ns.UserStatus
        ? new PepNodeConfig { MaxItems = PepNodeConfig.Max, ItemExpireSeconds = Options.StatusItemLifetimeSeconds }
        : new PepNodeConfig();

    public ValueTask<PepNodeSnapshot?> FindAsync(Jid owner, string node) =>
        WithNodesAsync(owner, nodes => ValueTask.FromResult(nodes.TryGetValue(node, out var n) ? n.Snapshot() : null));

    public ValueTask<IReadOnlyList<PepNodeSnapshot>> AllAsync(Jid owner) =>
        WithNodesAsync(owner, nodes => ValueTask.FromResult<IReadOnlyList<PepNodeSnapshot>>(nodes.Values.Select(n => n.Snapshot()).ToList()));

    // ---- IPepService ----

    public async ValueTask<(string? ItemId, PepError? Error)> PublishAsync(Jid owner, string node, string? itemId, Element payload, DataForm? publishOptions = null)
    {
        // XEP-0060 §7.1.3.4: a payload over the service's size limit is not-acceptable with payload-too-big.
        if (Options.MaxItemBytes > 0 && ElementWriter.ToBytes(payload).Length > Options.MaxItemBytes)
            return (null, new PepError(StanzaErrors.NotAcceptable, "payload-too-big",
                $"An item may hold at most {Options.MaxItemBytes / 1024} KiB"));
        var (id, snapshot, error) = await WithNodesAsync(owner, nodes => PublishLockedAsync(owner, nodes, node, itemId, payload, publishOptions));
        if (error is not null) return (null, error);
        var item = snapshot!.Items[^1];
        await NotifyItemAsync(owner.Bare, snapshot, item);
        await RaiseAsync(new PepChange(owner.Bare, node, PepChangeKind.Published, id, item));
        return (id, null);
    }

    public async ValueTask<bool> RetractAsync(Jid owner, string node, string itemId) =>
        await RetractCoreAsync(owner, node, itemId, notify: null) is null;

    public async ValueTask<PepItem?> GetItemAsync(Jid owner, string node, string? itemId = null)
    {
        var items = await GetItemsAsync(owner, node);
        return itemId is null ? items.LastOrDefault() : items.FirstOrDefault(i => i.Id == itemId);
    }

    public async ValueTask<IReadOnlyList<PepItem>> GetItemsAsync(Jid owner, string node) =>
        await FindAsync(owner, node) is { } n ? n.Live(Now).ToList() : [];

    // ---- Changes ----

    private async ValueTask<(string?, PepNodeSnapshot?, PepError?)> PublishLockedAsync(
        Jid owner, Dictionary<string, PepNode> nodes, string name, string? itemId, Element payload, DataForm? publishOptions)
    {
        var user = owner.Local!;
        bool created = false;
        if (nodes.TryGetValue(name, out var node))
        {
            // XEP-0060 §7.1.5: every option must already hold, or the publish fails and the client may reconfigure.
            if (publishOptions is not null && node.Config.Apply(publishOptions, ServiceMax, out _) != node.Config)
                return (null, null, PreconditionNotMet);
        }
        else
        {
            if (nodes.Count >= Options.MaxNodesPerAccount)
                return (null, null, new PepError(StanzaErrors.ResourceConstraint, Text: "too many PEP nodes on this account"));
            var config = DefaultConfig(name);
            // XEP-0163 §3 auto-create; the publish-options become the new node's configuration (XEP-0060 §7.1.5).
            if (publishOptions is not null)
            {
                if (config.Apply(publishOptions, ServiceMax, out _) is not { } applied) return (null, null, PreconditionNotMet);
                config = applied;
            }
            node = new PepNode(name, config);
            nodes[name] = node;
            created = true;
        }
        var id = string.IsNullOrEmpty(itemId) ? NewItemId() : itemId;
        var item = new PepItem(id, payload.Clone(), Now, owner.Bare.ToString());
        if (OverAccountLimit(nodes, node, item))
        {
            if (created) nodes.Remove(name);
            // Not payload-too-big (XEP-0060 §7.1.3.4), which says this one item is over the service's item size: the
            // item would fit, the account's total would not. resource-constraint, as for too many nodes; the client
            // may publish again once it has retracted items or deleted nodes.
            return (null, null, new PepError(StanzaErrors.ResourceConstraint,
                Text: $"This account's PEP storage is full ({Options.MaxBytesPerAccount / 1024} KiB); retract items or delete nodes to make room"));
        }
        node.Items.RemoveAll(i => i.Id == id || i.IsExpired(node.Config, Now));
        node.Items.Add(item);
        Trim(node);
        if (created || node.Config.PersistItems) await store.SaveNodeAsync(user, node);
        if (created) await store.AddToIndexAsync(user, name);
        return (id, node.Snapshot(), null);
    }

    /// Whether publishing item to node would take the account past Pep:MaxBytesPerAccount, counting what the node keeps
    /// after the publish: the item it replaces (same id), expired items and the oldest beyond pubsub#max_items go.
    private bool OverAccountLimit(Dictionary<string, PepNode> nodes, PepNode node, PepItem item)
    {
        var limit = Options.MaxBytesPerAccount;
        if (limit <= 0) return false;
        var now = Now;
        long total = item.Size;
        foreach (var other in nodes.Values)
            if (other != node)
                foreach (var kept in other.Items)
                    if (!kept.IsExpired(other.Config, now)) total += kept.Size;
        var max = node.Config.EffectiveMaxItems(ServiceMax);
        var remaining = node.Items.Where(i => i.Id != item.Id && !i.IsExpired(node.Config, now)).ToList();
        foreach (var kept in remaining.Skip(Math.Max(0, remaining.Count - (max - 1))))
            total += kept.Size;
        return total > limit;
    }

    private static readonly PepError PreconditionNotMet =
        new(StanzaErrors.Conflict, "precondition-not-met", "the node's configuration differs from the publish-options");

    /// Drops the oldest items beyond pubsub#max_items.
    private void Trim(PepNode node)
    {
        int max = node.Config.EffectiveMaxItems(ServiceMax);
        if (node.Items.Count > max) node.Items.RemoveRange(0, node.Items.Count - max);
    }

    /// XEP-0060 §7.2: retract one item; notify null follows pubsub#notify_retract.
    public async ValueTask<PepError?> RetractCoreAsync(Jid owner, string name, string itemId, bool? notify)
    {
        var (snapshot, error) = await WithNodesAsync(owner, async nodes =>
        {
            if (!nodes.TryGetValue(name, out var node)) return (null, NodeNotFound);
            if (node.Items.RemoveAll(i => i.Id == itemId) == 0) return ((PepNodeSnapshot?)null, new PepError(StanzaErrors.ItemNotFound));
            if (node.Config.PersistItems) await store.SaveNodeAsync(owner.Local!, node);
            return (node.Snapshot(), (PepError?)null);
        });
        if (error is not null) return error;
        if (notify ?? snapshot!.Config.NotifyRetract)
            await NotifyAsync(owner.Bare, snapshot!, new Element("items", Ns.PubSubEvent).SetAttr("node", name)
                .Add(new Element("retract", Ns.PubSubEvent).SetAttr("id", itemId)));
        await RaiseAsync(new PepChange(owner.Bare, name, PepChangeKind.Retracted, itemId, null));
        return null;
    }

    public static readonly PepError NodeNotFound = new(StanzaErrors.ItemNotFound, Text: "no such node");

    /// XEP-0060 §8.1: creates a node with a configuration; conflict when it exists.
    public ValueTask<PepError?> CreateAsync(Jid owner, string name, DataForm? configure) => WithNodesAsync(owner, async nodes =>
    {
        if (nodes.ContainsKey(name)) return new PepError(StanzaErrors.Conflict, Text: "the node exists");
        if (nodes.Count >= Options.MaxNodesPerAccount)
            return new PepError(StanzaErrors.ResourceConstraint, Text: "too many PEP nodes on this account");
        var config = DefaultConfig(name);
        if (configure is not null)
        {
            if (config.Apply(configure, ServiceMax, out var bad) is not { } applied)
                return new PepError(StanzaErrors.NotAcceptable, Text: "unsupported value for " + bad);
            config = applied;
        }
        var node = new PepNode(name, config);
        nodes[name] = node;
        await store.SaveNodeAsync(owner.Local!, node);
        await store.AddToIndexAsync(owner.Local!, name);
        return (PepError?)null;
    });

    /// XEP-0060 §8.2.4: replaces the node configuration; lowering max_items drops the oldest items.
    public ValueTask<PepError?> ConfigureAsync(Jid owner, string name, DataForm form) => WithNodesAsync(owner, async nodes =>
    {
        if (!nodes.TryGetValue(name, out var node)) return NodeNotFound;
        if (node.Config.Apply(form, ServiceMax, out var bad) is not { } config)
            return new PepError(StanzaErrors.NotAcceptable, Text: "unsupported value for " + bad);
        node.Config = config;
        Trim(node);
        await store.SaveNodeAsync(owner.Local!, node);
        return (PepError?)null;
    });

    /// XEP-0060 §8.5 purge (all items) or §8.4 delete (the node); subscribers hear of it when the node says so.
    public async ValueTask<PepError?> PurgeOrDeleteAsync(Jid owner, string name, bool delete)
    {
        var (snapshot, error) = await WithNodesAsync(owner, async nodes =>
        {
            if (!nodes.TryGetValue(name, out var node)) return ((PepNodeSnapshot?)null, NodeNotFound);
            var before = node.Snapshot();
            if (delete)
            {
                nodes.Remove(name);
                await store.DeleteNodeAsync(owner.Local!, name);
                await store.RemoveFromIndexAsync(owner.Local!, name);
            }
            else
            {
                node.Items.Clear();
                await store.SaveNodeAsync(owner.Local!, node);
            }
            return (before, (PepError?)null);
        });
        if (error is not null) return error;
        var config = snapshot!.Config;
        if (delete ? config.NotifyDelete : config.NotifyRetract)
            await NotifyAsync(owner.Bare, snapshot, new Element(delete ? "delete" : "purge", Ns.PubSubEvent).SetAttr("node", name));
        await RaiseAsync(new PepChange(owner.Bare, name, delete ? PepChangeKind.Deleted : PepChangeKind.Purged, null, null));
        return null;
    }

    /// XEP-0060 §8.9.2: sets "member" or "none" for bare JIDs; the owner's own affiliation cannot change.
    public ValueTask<PepError?> SetMembersAsync(Jid owner, string name, IReadOnlyList<(string Jid, bool Member)> changes) =>
        WithNodesAsync(owner, async nodes =>
        {
            if (!nodes.TryGetValue(name, out var node)) return NodeNotFound;
            foreach (var (jid, member) in changes)
            {
                if (member) node.Members.Add(jid);
                else node.Members.Remove(jid);
            }
            await store.SaveNodeAsync(owner.Local!, node);
            return (PepError?)null;
        });

    /// Removes every PEP node of a deleted account.
    public async ValueTask DeleteAccountAsync(string user)
    {
        var owner = Jid.Create(user, domains.Default);
        var names = await WithNodesAsync(owner, nodes =>
        {
            var all = nodes.Keys.ToList();
            nodes.Clear();
            return ValueTask.FromResult(all);
        });
        await store.DeleteAllAsync(user, names);
        _accounts.TryRemove(user, out _);
    }

    /// Removes expired items from every loaded account (pubsub#item_expire); returns how many went.
    public async ValueTask<int> SweepExpiredAsync()
    {
        int removed = 0;
        foreach (var (user, account) in _accounts)
        {
            if (account.Nodes is null) continue;
            removed += await WithNodesAsync(Jid.Create(user, domains.Default), async nodes =>
            {
                int count = 0;
                foreach (var node in nodes.Values)
                {
                    if (node.Config.ItemExpireSeconds <= 0) continue;
                    int n = node.Items.RemoveAll(i => i.IsExpired(node.Config, Now));
                    if (n == 0) continue;
                    count += n;
                    if (node.Config.PersistItems) await store.SaveNodeAsync(user, node);
                }
                return count;
            });
        }
        return removed;
    }

    private string NewItemId() =>
        Now.ToUnixTimeMilliseconds().ToString("x", CultureInfo.InvariantCulture) + "-" +
        Interlocked.Increment(ref _seq).ToString(CultureInfo.InvariantCulture);
}
