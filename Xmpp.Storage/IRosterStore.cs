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
}
