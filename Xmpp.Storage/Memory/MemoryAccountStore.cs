namespace Xmpp.Storage.Memory;

internal sealed class MemoryAccountStore : IAccountStore
{
    private readonly Dictionary<string, Account> _accounts = new(StringComparer.Ordinal);

    public ValueTask<Account?> FindAsync(string username)
    {
        lock (_accounts)
        {
            var account = _accounts.GetValueOrDefault(username);
            return ValueTask.FromResult(account is null ? null : Copy(account));
        }
    }

    public ValueTask<bool> CreateAsync(Account account)
    {
        var copy = Copy(account);
        lock (_accounts)
        {
            return ValueTask.FromResult(_accounts.TryAdd(account.Username, copy));
        }
    }

    public ValueTask UpdateAsync(Account account)
    {
        var copy = Copy(account);
        lock (_accounts)
        {
            if (_accounts.ContainsKey(account.Username))
                _accounts[account.Username] = copy;
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask RecordLogoutAsync(string username, DateTimeOffset at, string? status)
    {
        lock (_accounts)
        {
            if (_accounts.TryGetValue(username, out var account))
                _accounts[username] = account with { LastLogout = at, LastStatus = status };
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> DeleteAsync(string username)
    {
        lock (_accounts)
        {
            return ValueTask.FromResult(_accounts.Remove(username));
        }
    }

    public ValueTask<IReadOnlyList<string>> ListAsync()
    {
        lock (_accounts)
        {
            IReadOnlyList<string> names = _accounts.Keys.Order(StringComparer.Ordinal).ToArray();
            return ValueTask.FromResult(names);
        }
    }

    public ValueTask<int> CountAsync()
    {
        lock (_accounts)
        {
            return ValueTask.FromResult(_accounts.Count);
        }
    }

    // A caller may keep mutating its arrays or list; the store must hold what was passed at the time of the call,
    // as a database would.
    private static Account Copy(Account account) => account with
    {
        Credentials = account.Credentials
            .Select(k => k with { Salt = k.Salt.ToArray(), StoredKey = k.StoredKey.ToArray(), ServerKey = k.ServerKey.ToArray() })
            .ToArray(),
    };
}
