using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Server.Hosting;
using Xmpp.Storage;

namespace Xmpp.Server.Limits;

/// The server-wide block list: the entries of Xmpp:Blocked (and Xmpp:S2s:BlockedDomains, which it includes), plus
/// those added while the server runs (xmppd block, the admins' ad-hoc command), which are stored so they outlive a
/// restart. The router refuses every stanza from or to a listed address before any module sees it, and the s2s links
/// refuse the domains. The whole list is one immutable snapshot read without locks; a change swaps it and takes effect
/// with the next stanza. Node-local is safe as AdminSet's is: a cluster (issue 17) would reload it on invalidation.
public sealed class BlockList(XmppServerOptionsAccessor options, IStorage storage, TimeProvider time, ILogger<BlockList> logger) : IHostedService
{
    /// '/' cannot appear in a localpart (RFC 7622 §3.3.1), so this owner never collides with an account's documents.
    public const string Owner = "server/blocked";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly Lock _lock = new();
    private volatile IReadOnlySet<string> _stored = new HashSet<string>(StringComparer.Ordinal);
    // Built from the configuration at once, so the router's first stanza already meets the configured entries.
    private volatile Snapshot _current = Build(options.Value, new HashSet<string>(StringComparer.Ordinal));

    public sealed record Added(DateTimeOffset Time, string By);

    private sealed record Snapshot(HashSet<string> Jids, string[] Domains, IReadOnlySet<string> Configured);

    /// Raised after an entry was added, with the entry: the s2s links close those to a newly blocked domain.
    public event Action<string>? EntryAdded;

    private Snapshot Current => _current;

    private static Snapshot Build(XmppServerOptions o, IReadOnlySet<string> stored)
    {
        var configured = new HashSet<string>(StringComparer.Ordinal);
        foreach (var text in o.Blocked.Jids.Concat(o.Blocked.Domains).Concat(o.S2s.BlockedDomains))
            if (TryNormalize(text, out var entry, out _)) configured.Add(entry);
        var all = configured.Concat(stored).ToHashSet(StringComparer.Ordinal);
        return new Snapshot(all.Where(e => e.Contains('@')).ToHashSet(StringComparer.Ordinal),
            all.Where(e => !e.Contains('@')).ToArray(), configured);
    }

    /// Called under the lock: the stored set and the snapshot built from it change together.
    private void Replace(IReadOnlySet<string> stored)
    {
        _stored = stored;
        _current = Build(options.Value, stored);
    }

    /// True when nothing is listed, so the router's check costs nothing on a server that blocks nobody.
    public bool IsEmpty => Current is { Jids.Count: 0, Domains.Length: 0 };

    public bool IsBlocked(Jid jid)
    {
        var s = Current;
        return (s.Jids.Count > 0 || s.Domains.Length > 0)
            && (IsDomainBlocked(s, jid.Domain) || jid.Local is not null && s.Jids.Contains(jid.Bare.ToString()));
    }

    /// The domain or one of its parent domains is listed.
    public bool IsDomainBlocked(string domain) => IsDomainBlocked(Current, domain);

    private static bool IsDomainBlocked(Snapshot s, string domain)
    {
        foreach (var d in s.Domains)
            if (domain == d || domain.EndsWith(d, StringComparison.Ordinal) && domain.Length > d.Length && domain[^(d.Length + 1)] == '.')
                return true;
        return false;
    }

    /// Every entry, in order, with where it comes from ("config" or "stored"; one in both is listed as config).
    public IReadOnlyList<(string Entry, string Source)> Entries
    {
        get
        {
            var s = Current;
            return s.Configured.Select(e => (e, "config"))
                .Concat(_stored.Where(e => !s.Configured.Contains(e)).Select(e => (e, "stored")))
                .OrderBy(e => e.Item1, StringComparer.Ordinal).ToList();
        }
    }

    /// The entries added at run time (not those in the config), in order.
    public IReadOnlyList<string> Stored => _stored.Order(StringComparer.Ordinal).ToList();

    /// A bare JID ("spammer@example.net") or a domain ("spam.example"), in the form the list keeps it; false with the
    /// reason for anything else (a full JID, text that is no JID).
    public static bool TryNormalize(string text, out string entry, out string problem)
    {
        entry = "";
        problem = "";
        var trimmed = text.Trim().TrimEnd('.');
        if (!Jid.TryParse(trimmed, out var jid) || jid is null)
        {
            problem = $"'{text}' is neither a bare JID such as spammer@example.net nor a domain such as spam.example";
            return false;
        }
        if (jid.Resource is not null)
        {
            problem = $"'{text}' has a resource: block the bare JID {jid.Bare} or its domain {jid.Domain}";
            return false;
        }
        entry = jid.Local is null ? jid.Domain.ToLowerInvariant() : jid.Bare.ToString();
        return true;
    }

    /// Adds an entry, stored before it returns; false when it was listed already.
    public async ValueTask<bool> AddAsync(string entry, string by)
    {
        if (Current.Jids.Contains(entry) || Current.Domains.Contains(entry)) return false;
        await storage.KeyValue.SetAsync(Owner, entry, JsonSerializer.SerializeToUtf8Bytes(new Added(time.GetUtcNow(), by), Json));
        lock (_lock)
        {
            Replace(new HashSet<string>(_stored, StringComparer.Ordinal) { entry });
        }
        logger.LogWarning("{Entry} is now on the server's block list (by {By})", entry, by);
        EntryAdded?.Invoke(entry);
        return true;
    }

    /// Removes a stored entry; false when it was not stored (one from the config stays until the config changes).
    public async ValueTask<bool> RemoveAsync(string entry, string by)
    {
        if (!_stored.Contains(entry)) return false;
        await storage.KeyValue.DeleteAsync(Owner, entry);
        lock (_lock)
        {
            Replace(new HashSet<string>(_stored.Where(e => e != entry), StringComparer.Ordinal));
        }
        logger.LogWarning("{Entry} is no longer on the server's block list (by {By})", entry, by);
        return true;
    }

    /// Reads the stored entries (at start, or by the CLI on a stopped server's store).
    public async Task LoadAsync()
    {
        var stored = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, _) in await storage.KeyValue.ListAsync(Owner))
            if (TryNormalize(key, out var entry, out _)) stored.Add(entry);
        lock (_lock) Replace(stored);
    }

    public Task StartAsync(CancellationToken cancellationToken) => LoadAsync();

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
