using Xmpp.Protocol;

namespace Xmpp.Server.Sessions;

/// The router's only view of who is online: bare JID to its resources.
public interface ISessionDirectory
{
    ResourceSet Get(Jid bare);

    SessionEntry? Find(Jid full);

    /// Binds a resource. An existing session on the same full JID is returned so the caller can close it (RFC 6120 §7.7.2.2).
    SessionEntry? Bind(SessionEntry entry);

    /// Applies a change to the entry of this sink, if it is still bound; returns the new entry.
    SessionEntry? Update(ISessionSink sink, Func<SessionEntry, SessionEntry> change);

    /// Removes the sink's entry; returns the entry it had, or null when it was not bound.
    SessionEntry? Unbind(ISessionSink sink);

    /// XEP-0280: the resource's carbons flag, which decides whether it gets copies. Null when the sink is not bound.
    SessionEntry? SetCarbons(ISessionSink sink, bool enabled) =>
        Update(sink, e => e.Carbons == enabled ? e : e with { Carbons = enabled });

    /// XEP-0352: the resource said &lt;inactive/&gt; (true) or &lt;active/&gt; (false).
    SessionEntry? SetCsiInactive(ISessionSink sink, bool inactive) =>
        Update(sink, e => e.CsiInactive == inactive ? e : e with { CsiInactive = inactive });

    /// XEP-0191 §3.1: the resource retrieved the blocklist, so changes are pushed to it from now on.
    SessionEntry? SetBlocklistRequested(ISessionSink sink) =>
        Update(sink, static e => e.BlocklistRequested ? e : e with { BlocklistRequested = true });

    /// Completes when every change of this session made so far can be read by any node that asks the shared
    /// directory (GetConfirmedAsync); at once on a single node. Never throws.
    ValueTask PublishedAsync(ISessionSink sink) => ValueTask.CompletedTask;

    /// Get, checked against the shared directory where this node's copy may lag behind another node's binds (a
    /// cluster). For the paths that would otherwise treat the account as offline (spool, store for later, bounce):
    /// one Redis round trip there, none on the hot path. The same as Get on a single node.
    ValueTask<ResourceSet> GetConfirmedAsync(Jid bare) => ValueTask.FromResult(Get(bare));

    /// Raised (cluster) when this node learns that a session on another node has become available, from that node's
    /// directory event or a read of the shared directory: a moment after it happened. Never raised on a single node.
    event Action<SessionEntry>? RemoteAvailable { add { } remove { } }

    int Count { get; }

    IEnumerable<SessionEntry> All();
}
