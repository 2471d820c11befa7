using System.Collections.Immutable;

namespace Xmpp.Server.Sessions;

/// The resources of one account, copied on write so readers never lock.
public sealed class ResourceSet
{
    public static readonly ResourceSet Empty = new(ImmutableArray<SessionEntry>.Empty);

    private ResourceSet(ImmutableArray<SessionEntry> entries) => Entries = entries;

    public ImmutableArray<SessionEntry> Entries { get; }

    public int Count => Entries.Length;

    public SessionEntry? Find(string resource)
    {
        foreach (var e in Entries)
            if (e.Jid.Resource == resource) return e;
        return null;
    }

    public ResourceSet With(SessionEntry entry)
    {
        for (int i = 0; i < Entries.Length; i++)
            if (Entries[i].Jid.Resource == entry.Jid.Resource) return new ResourceSet(Entries.SetItem(i, entry));
        return new ResourceSet(Entries.Add(entry));
    }

    public ResourceSet Without(ISessionSink sink)
    {
        for (int i = 0; i < Entries.Length; i++)
            if (ReferenceEquals(Entries[i].Sink, sink)) return new ResourceSet(Entries.RemoveAt(i));
        return this;
    }

    public IEnumerable<SessionEntry> Available()
    {
        foreach (var e in Entries)
            if (e.Available) yield return e;
    }

    /// RFC 6121 §8.5.2.1.1: the "most available" resources: highest non-negative priority among available ones.
    // The set never changes, so neither does the answer: computed once per set, not once per message to the bare JID.
    private IReadOnlyList<SessionEntry>? _mostAvailable;

    public IReadOnlyList<SessionEntry> MostAvailable() => _mostAvailable ??= ComputeMostAvailable();

    private IReadOnlyList<SessionEntry> ComputeMostAvailable()
    {
        int best = int.MinValue;
        foreach (var e in Entries)
            if (e.ReceivesBareMessages && e.Priority > best) best = e.Priority;
        if (best == int.MinValue) return Array.Empty<SessionEntry>();
        var list = new List<SessionEntry>(1);
        foreach (var e in Entries)
            if (e.ReceivesBareMessages && e.Priority == best) list.Add(e);
        return list.ToArray();
    }
}
