namespace Xmpp.Storage;

// Rosters keyed by (user, contact JID). Every change bumps a per-user counter, rendered in decimal, that serves as the
// XEP-0237 roster version; it starts at "0" and never goes back, even across DeleteAll, so a client's cached version
// can never match a different roster.
public interface IRosterStore
{
    ValueTask<RosterSnapshot> GetAsync(string user);

    ValueTask<RosterItem?> GetItemAsync(string user, string jid);

    // Inserts or replaces the item and returns the new roster version.
    ValueTask<string> SetItemAsync(string user, RosterItem item);

    // Returns the new roster version, or null (changing nothing) when the item is absent.
    ValueTask<string?> RemoveItemAsync(string user, string jid);

    ValueTask DeleteAllAsync(string user);

    // Read-modify-write of one item: change gets the stored item (null: none) and returns the new one (null removes it;
    // the same instance changes nothing). Returns the item before and after and the new version (null when nothing
    // changed or a removed item was already absent). A store shared by several processes (PostgreSQL under cluster
    // nodes) runs it as one step under a lock on (user, jid), so two nodes changing the same contact of one account at
    // once never lose an update; change may then run more than once and must only compute. The default suits stores
    // one process owns, whose caller already serialises an account's changes (RosterService's per-account gate).
    async ValueTask<(RosterItem? Before, RosterItem? After, string? Version)> ChangeItemAsync(string user, string jid,
        Func<RosterItem?, RosterItem?> change)
    {
        var before = await GetItemAsync(user, jid);
        var after = change(before);
        if (ReferenceEquals(before, after)) return (before, before, null);
        var version = after is null ? await RemoveItemAsync(user, jid) : await SetItemAsync(user, after);
        return (before, after, version);
    }
}
