using Xmpp.Protocol;
using Xmpp.Protocol.Precis;

namespace Xmpp.Server.Hosting;

/// The domains this server is authoritative for, prepared once so comparisons are ordinal.
public sealed class ServedDomains
{
    private readonly HashSet<string> _set;

    public ServedDomains(IEnumerable<string> domains)
    {
        var list = domains.Select(Precis.PrepareDomain).Distinct().ToList();
        if (list.Count == 0) list.Add("localhost");
        All = list;
        Default = list[0];
        _set = new HashSet<string>(list, StringComparer.Ordinal);
    }

    public IReadOnlyList<string> All { get; }
    public string Default { get; }

    public bool Contains(string domain) => _set.Contains(domain);

    public bool IsLocal(Jid jid) => _set.Contains(jid.Domain);
}
