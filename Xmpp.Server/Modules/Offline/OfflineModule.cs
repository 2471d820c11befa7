// XEP-0160: Best Practices for Handling Offline Messages, with XEP-0203 delay stamps.
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Cluster;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Offline;

/// Messages to an account with no available resource are spooled durably and handed over, in order and once,
/// when a resource sends its initial presence. Receipts (XEP-0184) and markers (XEP-0333) are messages too,
/// so "delivered" and "read" ticks survive either side being offline.
[Xep("XEP-0160", "1.0.1")]
[Xep("XEP-0203", "2.0", "delay stamps on spooled messages")]
public sealed class OfflineModule(IStorage storage, IRouter router, ServedDomains domains, XmppServerOptionsAccessor options,
    ISessionDirectory directory, ILogger<OfflineModule> logger, IClusterLocks? clusterLocks = null)
    : IXmppModule
{
    public const string Collection = "offline";
    private const int Batch = 200;

    private readonly IArchiveStore _spool = storage.Archive(Collection);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    /// Per account: the spool writes queued and not yet durable.
    private readonly QueuedWrites _queued = new(storage);

    /// Per account: messages in the spool, queued writes included, so the quota holds while writes are in flight.
    /// Loaded from storage on first use; this module is the only writer of the spool.
    private readonly ConcurrentDictionary<string, StrongBox<long>> _counts = new(StringComparer.Ordinal);

    // In a cluster another node may spool for the same account at any time, so a count kept here says nothing about
    // the spool: every login queries it and the quota counts what is stored (docs/cluster-seams.md).
    private readonly bool _countsShared = options.Value.Cluster.Enabled;

    // Cluster: the per-node gate cannot keep two nodes from handing one spool to two resources logging in at once on
    // each; a drain that finds the spool not empty takes the account's cluster lock too. Null on a single node.
    private readonly IClusterLocks? _clusterLocks = options.Value.Cluster.Enabled ? clusterLocks : null;

    /// How long a drain waits for another node's drain of the same spool (a long one renews its lock meanwhile).
    private static readonly TimeSpan DrainLockWait = TimeSpan.FromSeconds(30);

    /// Per-session: until the spool has been handed over, messages delivered directly wait behind it.
    private sealed class DrainState
    {
        public bool Draining = true;
        public readonly List<Element> Held = [];
    }

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Offline);
        module.Hook(HookPoint.Undeliverable, 100, StoreAsync);
        // On the node that holds the session (the one draining its spool), also for stanzas routed from another node.
        module.Hook(HookPoint.DeliverToSession, 900, HoldWhileDraining);
        // Before any hook that could hold it (CSI): a request to look at the spool again is never written to a client.
        module.Hook(HookPoint.DeliverToSession, 0, SpoolCheckAsync);
        module.OnSessionBound(session => { session.State<DrainState>(); return ValueTask.CompletedTask; });
        module.OnSessionAvailable(DeliverSpoolAsync);
        module.OnSessionClosed(ReleaseHeldAsync);
        module.OnAccountDeleted(async user =>
        {
            await _queued.WaitAsync(user);
            await _spool.DeleteAllAsync(user);
            _counts.TryRemove(user, out _);
        });
    }

    /// XEP-0160 §3: store chat and normal messages; not chat-state-only ones (XEP-0085 §5.5) nor those hinted no-store (XEP-0334 §4).
    public static bool ShouldStore(Element message)
    {
        if (message.Attr("type") is "error" or "groupchat" or "headline") return false;
        if (message.Child("no-store", Ns.Hints) is not null) return false;
        bool meaningful = false;
        foreach (var child in message.Elements())
        {
            if (child.Namespace is "http://jabber.org/protocol/chatstates" or Ns.Hints) continue;
            if (child.Name is "thread" && child.Namespace == Ns.Client) continue;
            meaningful = true;
            break;
        }
        return meaningful || message.Child("store", Ns.Hints) is not null;
    }

    private async ValueTask<bool> StoreAsync(StanzaContext c)
    {
        var message = c.Stanza;
        if (message.Name != "message" || c.To?.Local is not { } user) return false;
        if (!ShouldStore(message))
        {
            // A no-store hint falls through to the router's service-unavailable (RFC 6121 §8.5.2.2.1);
            // a bare chat state is ephemeral and simply not kept (XEP-0085 §5.5).
            return message.Child("no-store", Ns.Hints) is null;
        }
        // The spool is written under the same per-account gate as the drain, so a drain either waits for this write or
        // has finished before it. In the second case a resource became available after the router found none, and
        // its drain has already looked: spooling now would leave the message waiting for the next login. It is handed
        // to the available resources instead (exactly as the router would have; one still draining holds it behind
        // the spool), and spooled only if none takes it.
        var gate = Gate(user);
        bool spooled;
        await gate.WaitAsync();
        try
        {
            if (await router.DeliverToBareAsync(c.To.Bare, message)) return true;
            spooled = await SpoolAsync(c, user, message);
        }
        finally
        {
            gate.Release();
        }
        if (spooled && _countsShared) await CheckAfterSpoolingAsync(c.To.Bare, user);
        return true;
    }

    // Cluster: the gate above is per node. A login on another node may have drained this account's spool between the
    // router's "nobody available" and this write's commit: its drain reads the spool after its initial presence is in
    // Redis (PresenceModule waits for that before the session-available handlers), so once the write is committed, an
    // available resource found now is one whose drain may have missed it. Its node is asked to look at the spool again
    // (SpoolCheckAsync there, under that node's gate, so each message is handed over once: XEP-0160 §4), and the
    // sender's next stanza waits for this, so a message routed to that resource afterwards arrives behind the spooled
    // one (the request and it share the ordered channel between the two nodes; RFC 6121 §8.5.2.2.1 order kept). Costs
    // a commit wait and at most one Redis read per message spooled, in cluster mode only.
    private async ValueTask CheckAfterSpoolingAsync(Jid bare, string user)
    {
        try { await _queued.WaitAsync(user); }
        catch (Exception) { return; } // not stored: the sender has its error (SpoolFailedAsync)
        var set = directory.Get(bare);
        if (!set.Available().Any()) set = await directory.GetConfirmedAsync(bare);
        // The resource a message to the bare JID would go to; else any available one (its login drains the spool too).
        if ((set.MostAvailable().FirstOrDefault() ?? set.Available().FirstOrDefault()) is not { } target) return;
        Interlocked.Increment(ref _spoolChecks);
        await router.DeliverToSessionAsync(target, new Element(SpoolCheck, Ns.Cluster).SetAttr("from", domains.Default).SetAttr("to", target.Jid.ToString()));
    }

    private const string SpoolCheck = "spool-check";
    private long _spoolChecks;

    /// Requests to look at a spool again sent after a spool write found the recipient available (cluster mode).
    public long SpoolChecks => Interlocked.Read(ref _spoolChecks);

    // On the node that holds the session (on the routing node TargetSession is null for a session elsewhere, and the
    // request goes on to its node): hands over what is spooled now, as at initial presence.
    private async ValueTask<bool> SpoolCheckAsync(StanzaContext c)
    {
        if (c.Stanza.Name != SpoolCheck || c.Stanza.Namespace != Ns.Cluster) return false;
        if (c.TargetSession is not { } session) return false;
        if (!session.IsClosing) await DeliverSpoolAsync(session);
        return true;
    }

    /// False when the message was not spooled (the sender got an error instead).
    private async ValueTask<bool> SpoolAsync(StanzaContext c, string user, Element message)
    {
        if (storage.Stall is { Active: true })
        {
            // RFC 6120 §8.3.3.18: resource-constraint, type wait (try again later): the disk is full, and a message
            // taken now would be held in memory behind the writes already waiting for space.
            await router.BounceAsync(message, StanzaErrors.ResourceConstraint, "The server's storage is full; try again later");
            return false;
        }
        int max = options.Value.Offline.MaxMessagesPerAccount;
        var count = await CountAsync(user);
        if (Interlocked.Increment(ref count.Value) > max)
        {
            Interlocked.Decrement(ref count.Value);
            logger.LogInformation("Offline storage of {User} is full", user);
            await router.BounceAsync(message, StanzaErrors.ServiceUnavailable, "The recipient's offline message storage is full");
            return false;
        }
        var stamped = message.Clone();
        if (stamped.Child("delay", Ns.Delay) is null)
        {
            stamped.Add(new Element("delay", Ns.Delay)
                .SetAttr("from", domains.Default)
                .SetAttr("stamp", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture))
                .AddText("Offline Storage"));
        }
        var payload = ElementWriter.ToBytes(stamped);
        await _queued.AddAsync(user, Spool(user, c.From.Bare.ToString(), payload, message, count), c.Origin);
        return true;
    }

    /// Queued, not awaited, so the sender's stream goes on while the writer commits many messages in one group. The
    /// queue keeps their order; whatever promises durability waits for it: a XEP-0198 acknowledgement flushes storage
    /// first, and the drain at the recipient's next presence waits for the account's last queued write.
    private Task Spool(string user, string from, byte[] payload, Element message, StrongBox<long> count)
    {
        var task = _spool.AppendAsync(user, DateTimeOffset.UtcNow, from, payload).AsTask();
        // Only a failure runs anything, and only then on the thread pool (ExecuteSynchronously: nothing is queued for
        // the writes that succeed).
        _ = task.ContinueWith(t => _ = SpoolFailedAsync(t.Exception!, user, message, count), CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;
    }

    private async Task SpoolFailedAsync(Exception ex, string user, Element message, StrongBox<long> count)
    {
        await Task.Yield();
        Interlocked.Decrement(ref count.Value);
        // Not stored after all: the sender learns it, rather than believing the message waits for its recipient.
        logger.LogError(ex, "Storing an offline message for {User} failed", user);
        try { await router.BounceAsync(message, StanzaErrors.InternalServerError, "The message could not be stored for the offline recipient"); }
        catch (Exception bounce) { logger.LogError(bounce, "Bouncing an unstored offline message failed"); }
    }

    /// Spooled messages of the accounts whose count is loaded (those that logged in or were written to since start).
    public long KnownSpooled => _counts.Values.Sum(c => Interlocked.Read(ref c.Value));

    private SemaphoreSlim Gate(string user) => _locks.GetOrAdd(user, static _ => new SemaphoreSlim(1, 1));

    private async ValueTask<StrongBox<long>> CountAsync(string user)
    {
        if (!_countsShared && _counts.TryGetValue(user, out var count)) return count;
        var stored = await _spool.CountAsync(user);
        if (_countsShared) return new StrongBox<long>(stored);
        return _counts.GetOrAdd(user, _ => new StrongBox<long>(stored));
    }

    private ValueTask<bool> HoldWhileDraining(StanzaContext c)
    {
        if (c.Stanza.Name != "message" || c.Target is not { } target || c.TargetSession is not { } session) return ValueTask.FromResult(false);
        // Only an available resource has a spool to wait behind: before initial presence nothing to the bare JID
        // reaches it, and a stanza to its full JID (an error reply above all) is delivered at once (RFC 6121 §8.5.3.1,
        // RFC 6120 §10.5.4). An error never waits: it answers something this resource sent, not a chat to order.
        if (!target.Available || c.Stanza.Attr("type") == "error") return ValueTask.FromResult(false);
        var state = session.State<DrainState>();
        lock (state)
        {
            if (!state.Draining) return ValueTask.FromResult(false);
            state.Held.Add(c.Stanza);
            return ValueTask.FromResult(true);
        }
    }

    /// At initial presence: spooled messages first, in the order they were stored, then whatever arrived meanwhile.
    private async ValueTask DeliverSpoolAsync(ISession session)
    {
        var user = session.Jid.Local!;
        var gate = Gate(user);
        await gate.WaitAsync();
        IClusterLock? drainLock = null;
        try
        {
            await _queued.WaitAsync(user);
            // Every spooled message is counted under this gate before it is written, so a known count of zero means an
            // empty spool and the login needs no query (one per initial presence was ~6 % of a login's server CPU).
            if (!_countsShared && _counts.TryGetValue(user, out var known) && Interlocked.Read(ref known.Value) == 0) return;
            var page = await _spool.QueryAsync(new ArchiveQuery(user, Max: Batch));
            if (page.Records.Count > 0 && _clusterLocks is not null)
            {
                // Cluster: another resource of the account may be logging in on another node right now, and its drain
                // read the same records. Under the account's cluster lock the spool is read again: what the other
                // drain handed over, it deleted before letting go, so each message goes to one resource (XEP-0160 §4),
                // as the gate does on one node. An empty spool (most logins) costs no Redis round trip: a message
                // spooled after that read is handed over by the spool-check (CheckAfterSpoolingAsync).
                drainLock = await _clusterLocks.AcquireAsync("offline:" + user, DrainLockWait, () => session.IsClosing);
                if (drainLock is null)
                {
                    if (!session.IsClosing)
                        logger.LogWarning("The offline spool of {User} was not handed over: another node's drain did not end", user);
                    return;
                }
                page = await _spool.QueryAsync(new ArchiveQuery(user, Max: Batch));
            }
            while (true)
            {
                if (page.Records.Count == 0)
                {
                    // Nothing spooled and nothing being spooled (the gate is held): the count is known from here on.
                    if (!_countsShared) _counts.TryAdd(user, new StrongBox<long>(0));
                    break;
                }
                if (drainLock is { Held: false })
                {
                    // Another node may hold the account's lock now and hand over the same records: the rest stays
                    // spooled for that drain or the next login.
                    logger.LogWarning("The offline spool of {User}: the cluster lock was lost during its hand-over", user);
                    return;
                }
                foreach (var record in page.Records)
                {
                    var message = Parse(record.Payload);
                    if (message is null) continue;
                    message.SetAttr("to", session.Jid.ToString());
                    if (!session.Send(message)) return; // the session went away: the rest stays spooled
                }
                await _spool.DeleteThroughAsync(user, page.Records[^1].Id);
                if (_counts.TryGetValue(user, out var count)) Interlocked.Add(ref count.Value, -page.Records.Count);
                if (page.Records.Count < Batch) break;
                page = await _spool.QueryAsync(new ArchiveQuery(user, Max: Batch));
            }
        }
        finally
        {
            // Released once the deletes have committed (DeleteThroughAsync waits for that): the next drain reads after.
            if (drainLock is not null) await drainLock.DisposeAsync();
            gate.Release();
            FlushHeld(session);
        }
    }

    private static void FlushHeld(ISession session)
    {
        var state = session.State<DrainState>();
        lock (state)
        {
            foreach (var held in state.Held) session.Send(held);
            state.Held.Clear();
            state.Draining = false;
        }
    }

    /// A session that ends while its spool is handed over gives its held messages back to the router.
    private async ValueTask ReleaseHeldAsync(ISession session)
    {
        var state = session.State<DrainState>();
        List<Element> held;
        lock (state)
        {
            held = [.. state.Held];
            state.Held.Clear();
            state.Draining = false;
        }
        foreach (var message in held) await router.RouteAsync(message, null);
    }

    private Element? Parse(byte[] payload)
    {
        try { return StoredStanza.Parse(payload); }
        catch (Exception ex)
        {
            logger.LogError(ex, "A spooled message could not be parsed and was skipped: {Text}", Encoding.UTF8.GetString(payload));
            return null;
        }
    }
}
