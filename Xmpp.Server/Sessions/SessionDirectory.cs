using System.Collections.Concurrent;
using Xmpp.Protocol;

namespace Xmpp.Server.Sessions;

/// In-process session directory: lock-free reads, per-account copy-on-write updates.
public sealed class SessionDirectory : ISessionDirectory
{
    private readonly ConcurrentDictionary<string, ResourceSet> _accounts = new(StringComparer.Ordinal);
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public ResourceSet Get(Jid bare) =>
        _accounts.TryGetValue(bare.Bare.ToString(), out var set) ? set : ResourceSet.Empty;

    public SessionEntry? Find(Jid full) =>
        full.Resource is null ? null : Get(full).Find(full.Resource);

    public SessionEntry? Bind(SessionEntry entry)
    {
        var key = entry.Jid.Bare.ToString();
        SessionEntry? previous = null;
        _accounts.AddOrUpdate(key,
            _ => { previous = null; return ResourceSet.Empty.With(entry); },
            (_, set) => { previous = set.Find(entry.Jid.Resource!); return set.With(entry); });
        if (previous is null) Interlocked.Increment(ref _count);
        return previous;
    }

    public SessionEntry? Update(ISessionSink sink, Func<SessionEntry, SessionEntry> change)
    {
        var key = sink.Jid.Bare.ToString();
        while (_accounts.TryGetValue(key, out var set))
        {
            var current = set.Find(sink.Jid.Resource!);
            if (current is null || !ReferenceEquals(current.Sink, sink)) return null;
            var updated = change(current);
            if (_accounts.TryUpdate(key, set.With(updated), set)) return updated;
        }
        return null;
    }

    public SessionEntry? Unbind(ISessionSink sink)
    {
        var key = sink.Jid.Bare.ToString();
        while (_accounts.TryGetValue(key, out var set))
        {
            var current = set.Find(sink.Jid.Resource!);
            if (current is null || !ReferenceEquals(current.Sink, sink)) return null;
            var next = set.Without(sink);
            bool done = next.Count == 0
                ? _accounts.TryRemove(new KeyValuePair<string, ResourceSet>(key, set))
                : _accounts.TryUpdate(key, next, set);
            if (!done) continue;
            Interlocked.Decrement(ref _count);
            return current;
        }
        return null;
    }

    public IEnumerable<SessionEntry> All()
    {
        foreach (var kv in _accounts)
            foreach (var e in kv.Value.Entries)
                yield return e;
    }
}
