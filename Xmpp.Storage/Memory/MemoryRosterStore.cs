namespace Xmpp.Storage.Memory;

internal sealed class MemoryRosterStore : IRosterStore
{
    private readonly Dictionary<string, UserRoster> _users = new(StringComparer.Ordinal);

    public ValueTask<RosterSnapshot> GetAsync(string user)
    {
        lock (_users)
        {
            if (!_users.TryGetValue(user, out var roster))
                return ValueTask.FromResult(new RosterSnapshot("0", []));
            return ValueTask.FromResult(new RosterSnapshot(Render(roster.Version), roster.Items.Values.ToArray()));
        }
    }

    public ValueTask<RosterItem?> GetItemAsync(string user, string jid)
    {
        lock (_users)
        {
            var item = _users.TryGetValue(user, out var roster) ? roster.Items.GetValueOrDefault(jid) : null;
            return ValueTask.FromResult(item);
        }
    }

    public ValueTask<string> SetItemAsync(string user, RosterItem item)
    {
        var copy = item with { Groups = item.Groups.ToArray() };
        lock (_users)
        {
            var roster = GetOrAdd(user);
            roster.Items[item.Jid] = copy;
            return ValueTask.FromResult(Render(++roster.Version));
        }
    }

    public ValueTask<string?> RemoveItemAsync(string user, string jid)
    {
        lock (_users)
        {
            if (!_users.TryGetValue(user, out var roster) || !roster.Items.Remove(jid))
                return ValueTask.FromResult<string?>(null);
            return ValueTask.FromResult<string?>(Render(++roster.Version));
        }
    }

    public ValueTask DeleteAllAsync(string user)
    {
        lock (_users)
        {
            // The counter survives (see IRosterStore) so a recreated account never repeats an old version.
            var roster = GetOrAdd(user);
            roster.Items.Clear();
            roster.Version++;
        }
        return ValueTask.CompletedTask;
    }

    private UserRoster GetOrAdd(string user)
    {
        if (!_users.TryGetValue(user, out var roster))
            _users[user] = roster = new UserRoster();
        return roster;
    }

    private static string Render(long version) => version.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private sealed class UserRoster
    {
        public long Version;
        public readonly SortedDictionary<string, RosterItem> Items = new(StringComparer.Ordinal);
    }
}
