namespace Xmpp.Storage;

public interface IAccountStore
{
    ValueTask<Account?> FindAsync(string username);

    // Returns false, changing nothing, when the username already exists.
    ValueTask<bool> CreateAsync(Account account);

    // Replaces an existing account; does nothing when it does not exist (so a late update cannot resurrect a deleted account).
    ValueTask UpdateAsync(Account account);

    ValueTask<bool> DeleteAsync(string username);

    // All usernames in ordinal order.
    ValueTask<IReadOnlyList<string>> ListAsync();

    ValueTask<int> CountAsync();
}
