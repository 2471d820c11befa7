namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    // Every owner with records in the index or in memory (for IStorageInventory), ordinal-ordered; some may have had
    // all of their records deleted.
    public IReadOnlyList<string> Owners()
    {
        var owners = new SortedSet<string>(_index.Owners(), StringComparer.Ordinal);
        lock (_gate)
            owners.UnionWith(_owners.Keys);
        return [.. owners];
    }
}
