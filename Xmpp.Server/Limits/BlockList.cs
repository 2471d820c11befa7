using Xmpp.Protocol;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Limits;

/// The server-wide block list of Xmpp:Blocked (and Xmpp:S2s:BlockedDomains, which it includes). The router refuses
/// every stanza from or to a listed address before any module sees it, and the s2s links refuse the domains.
public sealed class BlockList
{
    private readonly HashSet<string> _jids = new(StringComparer.Ordinal);
    private readonly string[] _domains;

    public BlockList(XmppServerOptionsAccessor options)
    {
        var o = options.Value;
        foreach (var text in o.Blocked.Jids)
            if (Jid.TryParse(text.Trim(), out var jid)) _jids.Add(jid!.Bare.ToString());
        _domains = o.Blocked.Domains.Concat(o.S2s.BlockedDomains)
            .Select(d => d.Trim().TrimEnd('.').ToLowerInvariant()).Where(d => d.Length > 0).Distinct().ToArray();
    }

    /// True when nothing is listed, so the router's check costs nothing on a server that blocks nobody.
    public bool IsEmpty => _jids.Count == 0 && _domains.Length == 0;

    public bool IsBlocked(Jid jid) =>
        !IsEmpty && (IsDomainBlocked(jid.Domain) || jid.Local is not null && _jids.Contains(jid.Bare.ToString()));

    /// The domain or one of its parent domains is listed.
    public bool IsDomainBlocked(string domain)
    {
        foreach (var d in _domains)
            if (domain == d || domain.EndsWith(d, StringComparison.Ordinal) && domain.Length > d.Length && domain[^(d.Length + 1)] == '.')
                return true;
        return false;
    }
}
