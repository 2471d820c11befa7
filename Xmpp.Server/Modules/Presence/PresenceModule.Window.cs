using System.Collections.Concurrent;
using System.Diagnostics;
using Xmpp.Protocol;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Presence;

// The cluster's replication window and initial presence (RFC 6121 §4.2.2, §4.4.2): a node learns of a login on another
// node a moment after it happened. Two contacts who log in at the same moment on different nodes can each miss the
// other: the probe answers and the broadcast of each read a copy of the directory that does not have the other yet.
// Reading the shared directory per contact on every presence would cost too much, so instead a new session remembers,
// for a few seconds, the contacts it is subscribed to; when this node then learns that one of them has become
// available (ISessionDirectory.RemoteAvailable), that contact's presence is routed to the session, as a probe answer
// would have been. A session that did get it already gets it a second time, which presence allows (§4.4.2 updates).
public sealed partial class PresenceModule
{
    // Longer than the replication lag seen under load (tens to hundreds of milliseconds).
    private static readonly long WindowTicks = Stopwatch.Frequency * 5;

    // Contact's bare JID → the local sessions subscribed to it that became available in the last few seconds.
    private readonly ConcurrentDictionary<string, List<(ISession Session, long Until)>> _awaiting = new(StringComparer.Ordinal);
    private int _remembered;
    private long _lateAnswers;

    /// Presence of a contact routed to a session because this node learnt of the contact's login after the session's own.
    public long LateAnswers => Interlocked.Read(ref _lateAnswers);

    private bool WatchesWindow => options.Value.Cluster.Enabled;

    private void RememberContacts(ISession session, IReadOnlyList<RosterItem> items)
    {
        long until = Stopwatch.GetTimestamp() + WindowTicks;
        // The account's own other resources too: it is implicitly subscribed to its own presence.
        foreach (var contact in items.Where(i => i.InRoster && i.Subscription is Subscription.To or Subscription.Both).Select(i => i.Jid)
                     .Append(session.Jid.Bare.ToString()))
        {
            var list = _awaiting.GetOrAdd(contact, static _ => []);
            lock (list) list.Add((session, until));
        }
        // Now and then, everything whose window has passed goes.
        if (Interlocked.Increment(ref _remembered) % 256 == 0) Sweep();
    }

    private void Sweep()
    {
        long now = Stopwatch.GetTimestamp();
        foreach (var (contact, list) in _awaiting)
        {
            lock (list)
            {
                list.RemoveAll(w => w.Until < now);
                if (list.Count == 0) _awaiting.TryRemove(new KeyValuePair<string, List<(ISession, long)>>(contact, list));
            }
        }
    }

    private void OnRemoteAvailable(SessionEntry remote)
    {
        if (_awaiting.IsEmpty || remote.Presence is not { } presence) return;
        if (!_awaiting.TryGetValue(remote.Jid.Bare.ToString(), out var list)) return;
        long now = Stopwatch.GetTimestamp();
        List<ISession> targets;
        lock (list)
        {
            list.RemoveAll(w => w.Until < now);
            targets = list.Select(w => w.Session).Distinct().ToList();
        }
        if (targets.Count == 0) return;
        var from = remote.Jid.ToString();
        // Off the directory's event reader: routing runs the inbound hooks (blocking, for one) like any presence.
        _ = Task.Run(async () =>
        {
            foreach (var session in targets)
            {
                if (session.IsClosing || directory.Find(session.Jid) is not { Available: true }) continue;
                Interlocked.Increment(ref _lateAnswers);
                await router.RouteAsync(presence.Clone().SetAttr("from", from).SetAttr("to", session.Jid.ToString()), null);
            }
        });
    }
}
