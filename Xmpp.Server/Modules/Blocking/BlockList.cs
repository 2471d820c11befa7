using System.Text;
using Xmpp.Protocol;

namespace Xmpp.Server.Modules.Blocking;

/// One account's blocked JIDs, immutable: a change builds a new list, so checks on the routing path read it without
/// locks. Items are normalized JID strings in the order they were blocked.
internal sealed class BlockList
{
    public static readonly BlockList Empty = new([]);

    private readonly HashSet<string> _set;

    private BlockList(IReadOnlyList<string> items)
    {
        Items = items;
        _set = new HashSet<string>(items, StringComparer.Ordinal);
    }

    public IReadOnlyList<string> Items { get; }

    public int Count => Items.Count;

    public bool Contains(string item) => _set.Contains(item);

    public static BlockList Of(IEnumerable<string> items)
    {
        var list = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in items)
            if (seen.Add(item)) list.Add(item);
        return list.Count == 0 ? Empty : new BlockList(list);
    }

    public BlockList With(IEnumerable<string> items) => Of(Items.Concat(items));

    public BlockList Without(IEnumerable<string> items)
    {
        var removed = new HashSet<string>(items, StringComparer.Ordinal);
        return Of(Items.Where(i => !removed.Contains(i)));
    }

    /// XEP-0191 §6 (JID Matching, as in XEP-0016): an item user@domain/resource matches only that resource,
    /// user@domain any of its resources, domain/resource only that resource, and domain the domain itself, every
    /// address at it and every address at its subdomains.
    public bool Matches(Jid jid)
    {
        if (_set.Count == 0) return false;
        if (_set.Contains(jid.ToString())) return true;
        if (jid.Local is not null && _set.Contains(jid.Bare.ToString())) return true;
        var domain = jid.Domain;
        while (true)
        {
            if (_set.Contains(domain)) return true;
            int dot = domain.IndexOf('.');
            if (dot < 0 || dot == domain.Length - 1) return false;
            domain = domain[(dot + 1)..];
        }
    }

    public byte[] ToBytes() => Encoding.UTF8.GetBytes(string.Join('\n', Items));

    public static BlockList Parse(byte[] stored) =>
        Of(Encoding.UTF8.GetString(stored).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
