using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Server.Hosting;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.AdHoc;

/// Who may run the admin commands: the bare JIDs in Xmpp:Admins, plus the accounts made admins at run time (by an
/// invitation that grants it), which are stored so they stay admins after a restart. The stored set is read once at
/// start and then kept in memory, so the check on every command and disco query reads no storage. Node-local is safe:
/// the set only grows through this process (registration) and a cluster (issue 17) would keep it in PostgreSQL and
/// reload it with the session directory's invalidations.
public sealed class AdminSet(IStorage storage, XmppServerOptionsAccessor options, TimeProvider time, ILogger<AdminSet> logger) : IHostedService
{
    /// '/' cannot appear in a localpart (RFC 7622 §3.3.1), so this owner never collides with an account's documents.
    public const string Owner = "server/admins";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly Lock _lock = new();
    private HashSet<string>? _configured;
    private volatile HashSet<string> _granted = new(StringComparer.Ordinal);

    public sealed record Grant(DateTimeOffset Granted, string Reason);

    public bool IsAdmin(Jid who)
    {
        var bare = who.Bare.ToString();
        _configured ??= options.Value.Admins
            .Select(a => Jid.TryParse(a, out var j) ? j.Bare.ToString() : null)
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        return _configured.Contains(bare) || _granted.Contains(bare);
    }

    /// The accounts made admins at run time (not those in the config), in JID order.
    public IReadOnlyList<string> Granted => _granted.Order(StringComparer.Ordinal).ToList();

    /// Makes the account an admin, stored before it returns so the grant survives a crash right after.
    public async ValueTask GrantAsync(Jid account, string reason)
    {
        var bare = account.Bare.ToString();
        await storage.KeyValue.SetAsync(Owner, bare, JsonSerializer.SerializeToUtf8Bytes(new Grant(time.GetUtcNow(), reason), Json));
        lock (_lock) _granted = new HashSet<string>(_granted, StringComparer.Ordinal) { bare };
        logger.LogWarning("{Account} is now an administrator ({Reason})", bare, reason);
    }

    /// An account's grants go with it: a later account of the same name is not an admin.
    public async ValueTask AccountDeletedAsync(string user)
    {
        foreach (var bare in _granted.Where(j => Jid.TryParse(j, out var jid) && jid.Local == user).ToList())
        {
            await storage.KeyValue.DeleteAsync(Owner, bare);
            lock (_lock) _granted = new HashSet<string>(_granted.Where(j => j != bare), StringComparer.Ordinal);
            logger.LogInformation("{Account} was deleted and is no longer an administrator", bare);
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var kept = new List<string>();
        foreach (var (bare, bytes) in await storage.KeyValue.ListAsync(Owner))
        {
            // An account deleted while the server was stopped (xmppd user del on the store) took no grant with it; one
            // created again under the same name since is another person's.
            var grant = JsonSerializer.Deserialize<Grant>(bytes, Json);
            if (grant is not null && Jid.TryParse(bare, out var jid) && jid.Local is not null
                && await storage.Accounts.FindAsync(jid.Local) is { } account && account.Created <= grant.Granted)
            {
                kept.Add(bare);
                continue;
            }
            await storage.KeyValue.DeleteAsync(Owner, bare);
            logger.LogInformation("{Account} no longer exists and is no longer an administrator", bare);
        }
        lock (_lock) _granted = new HashSet<string>(_granted.Concat(kept), StringComparer.Ordinal);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
