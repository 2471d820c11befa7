namespace Xmpp.Storage;

public interface IAccountStore
{
    ValueTask<Account?> FindAsync(string username);

    // Returns false, changing nothing, when the username already exists.
    ValueTask<bool> CreateAsync(Account account);

    // Replaces an existing account; does nothing when it does not exist (so a late update cannot resurrect a deleted account).
    ValueTask UpdateAsync(Account account);

    // Sets LastLogout and LastStatus of an existing account, leaving every other field as stored at that moment (a
    // password changed meanwhile stays changed); does nothing when the account does not exist. One write per session
    // end, without reading the account first.
    ValueTask RecordLogoutAsync(string username, DateTimeOffset at, string? status);

    ValueTask<bool> DeleteAsync(string username);

    // All usernames in ordinal order.
    ValueTask<IReadOnlyList<string>> ListAsync();

    ValueTask<int> CountAsync();
}
