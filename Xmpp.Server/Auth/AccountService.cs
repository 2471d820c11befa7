using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Server.Hosting;
using Xmpp.Storage;
using ScramKeys = Xmpp.Storage.ScramKeys;

namespace Xmpp.Server.Auth;

/// Accounts as the server uses them: SCRAM keys only (never a password), an existence cache for the router,
/// and the account-deleted event that lets every module remove its data.
public sealed class AccountService
{
    private readonly IStorage storage;
    private readonly XmppServerOptionsAccessor options;
    private readonly ILogger<AccountService> logger;
    private readonly Caching.ICacheInvalidation? _invalidation;

    public AccountService(IStorage storage, XmppServerOptionsAccessor options, ILogger<AccountService> logger,
        Caching.ICacheInvalidation? invalidation = null)
    {
        this.storage = storage;
        this.options = options;
        this.logger = logger;
        _invalidation = invalidation;
        // Another node created, changed or deleted an account: its keys and whether it exists go here too, and reads
        // under way do not keep theirs.
        invalidation?.Subscribe(KeysCacheName, user =>
        {
            lock (_keysLock)
            {
                _keyWrites++;
                if (user is null)
                {
                    _keys.Clear();
                    _exists.Clear();
                }
                else
                {
                    _keys.TryRemove(user, out _);
                    _exists.TryRemove(user, out _);
                }
            }
        });
    }

    // In a cluster, dropped with the keys when another node creates or deletes the account (account-keys).
    private readonly ConcurrentDictionary<string, bool> _exists = new(StringComparer.Ordinal);
    // Node-local: every change goes through this service on this process. A cluster (issue 17) must invalidate it
    // across nodes.
    private readonly ConcurrentDictionary<string, bool> _disabled = new(StringComparer.Ordinal);
    private Func<string, ValueTask>[] _deleted = [];

    internal void SetDeletedHandlers(IEnumerable<Func<string, ValueTask>> handlers) => _deleted = handlers.ToArray();

    public static string HashName(ScramHash hash) => hash switch
    {
        ScramHash.Sha1 => "SHA-1",
        ScramHash.Sha256 => "SHA-256",
        _ => "SHA-512",
    };

    public async ValueTask<bool> ExistsAsync(string username)
    {
        if (_exists.TryGetValue(username, out var known)) return known;
        long writesBefore = Volatile.Read(ref _keyWrites);
        var found = await storage.Accounts.FindAsync(username) is not null;
        lock (_keysLock)
            if (_keyWrites == writesBefore) _exists[username] = found;
        return found;
    }

    public ValueTask<Account?> FindAsync(string username) => storage.Accounts.FindAsync(username);

    // The SCRAM keys of the accounts that logged in lately, so a reconnecting client's login reads no account from the
    // store (a LiteDB FindById was ~4 % of a login's server CPU). ejabberd keeps the same by default (auth_use_cache).
    // Bounded: at most MaxCachedKeys accounts (~0.3 KiB each), all dropped when full. Every change of keys goes
    // through this service and drops the account's entry after the store has it, and a read that overlapped any
    // change does not keep what it read; in a cluster the change reaches the other nodes through ICacheInvalidation.
    internal const string KeysCacheName = "account-keys";
    internal const int MaxCachedKeys = 4096;
    private readonly ConcurrentDictionary<string, Account> _keys = new(StringComparer.Ordinal);
    private readonly Lock _keysLock = new();
    private long _keyWrites;

    /// The account as a login needs it: its username and SCRAM keys (the last-logout fields are not kept current).
    public ValueTask<Account?> FindForLoginAsync(string username) =>
        _keys.TryGetValue(username, out var known) ? ValueTask.FromResult<Account?>(known) : ReadForLoginAsync(username);

    private async ValueTask<Account?> ReadForLoginAsync(string username)
    {
        long writesBefore = Volatile.Read(ref _keyWrites);
        var account = await storage.Accounts.FindAsync(username);
        if (account is null) return null;
        var keys = account with { LastLogout = null, LastStatus = null };
        lock (_keysLock)
        {
            if (_keyWrites == writesBefore)
            {
                if (_keys.Count >= MaxCachedKeys) _keys.Clear();
                _keys[username] = keys;
            }
        }
        return keys;
    }

    // After the store has the change: this node's copy goes, then the other nodes' copies.
    private async ValueTask KeysChangedAsync(string username)
    {
        lock (_keysLock)
        {
            _keyWrites++;
            _keys.TryRemove(username, out _);
        }
        if (_invalidation is { Shared: true } shared) await shared.ChangedAsync(KeysCacheName, username);
    }

    public ValueTask<int> CountAsync() => storage.Accounts.CountAsync();

    public static ScramCredential? Credential(Account account, ScramHash hash)
    {
        var name = HashName(hash);
        foreach (var k in account.Credentials)
            if (k.Hash == name) return new ScramCredential(hash, k.Salt, k.Iterations, k.StoredKey, k.ServerKey);
        return null;
    }

    public IReadOnlyList<ScramKeys> DeriveKeys(string password)
    {
        int iterations = options.Value.Auth.ScramIterations;
        var list = new List<ScramKeys>(3);
        foreach (var hash in ScramHashes.All)
        {
            var c = ScramCredential.Derive(password, hash, iterations);
            list.Add(new ScramKeys(HashName(hash), c.Salt, c.Iterations, c.StoredKey, c.ServerKey));
        }
        return list;
    }

    /// Creates an account; false when it exists already.
    public async ValueTask<bool> CreateAsync(string username, string password)
    {
        await BlockingWork.ToPool(); // PBKDF2 must not hold a socket engine's thread
        var created = await storage.Accounts.CreateAsync(new Account(username, DeriveKeys(password), DateTimeOffset.UtcNow));
        if (created)
        {
            await KeysChangedAsync(username);
            _exists[username] = true;
            logger.LogInformation("Account {User} created", username);
        }
        return created;
    }

    public async ValueTask<bool> ChangePasswordAsync(string username, string password)
    {
        var account = await storage.Accounts.FindAsync(username);
        if (account is null) return false;
        await BlockingWork.ToPool(); // PBKDF2 must not hold a socket engine's thread
        await storage.Accounts.UpdateAsync(account with { Credentials = DeriveKeys(password) });
        await KeysChangedAsync(username);
        // XEP-0484: a token stands in for the password, so a new password ends every client's token.
        await FastTokenService.RevokeAllAsync(storage, username);
        logger.LogInformation("Password of {User} changed", username);
        return true;
    }

    public async ValueTask<bool> DeleteAsync(string username)
    {
        var deleted = await storage.Accounts.DeleteAsync(username);
        await KeysChangedAsync(username);
        _exists[username] = false;
        if (!deleted) return false;
        await FastTokenService.RevokeAllAsync(storage, username);
        await storage.KeyValue.DeleteAsync(username, DisabledKey);
        _disabled.TryRemove(username, out _);
        foreach (var handler in _deleted) await handler(username);
        logger.LogInformation("Account {User} deleted", username);
        return true;
    }

    private const string DisabledKey = "account:disabled";

    /// XEP-0133 §4.3: a disabled account keeps its data but cannot log in (SASL account-disabled, RFC 6120 §6.5.1).
    public async ValueTask<bool> DisableAsync(string username, string reason)
    {
        if (await storage.Accounts.FindAsync(username) is null) return false;
        await storage.KeyValue.SetAsync(username, DisabledKey, System.Text.Encoding.UTF8.GetBytes(reason));
        _disabled[username] = true;
        logger.LogInformation("Account {User} disabled", username);
        return true;
    }

    public async ValueTask<bool> EnableAsync(string username)
    {
        if (await storage.Accounts.FindAsync(username) is null) return false;
        await storage.KeyValue.DeleteAsync(username, DisabledKey);
        _disabled[username] = false;
        logger.LogInformation("Account {User} enabled again", username);
        return true;
    }

    /// Read once per account and then kept: only DisableAsync and EnableAsync change it.
    public async ValueTask<bool> IsDisabledAsync(string username)
    {
        if (_disabled.TryGetValue(username, out var known)) return known;
        var disabled = await storage.KeyValue.GetAsync(username, DisabledKey) is not null;
        _disabled.TryAdd(username, disabled);
        return disabled;
    }

    /// XEP-0012: when the account's last session ended. Only the two fields are written, so a password changed while
    /// the session ended is kept (a read-then-replace here could put the old keys back).
    public ValueTask RecordLogoutAsync(string username, string? status) =>
        storage.Accounts.RecordLogoutAsync(username, DateTimeOffset.UtcNow, status);
}
