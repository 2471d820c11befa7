using Xmpp.Storage.Log;

namespace Xmpp.Storage.LiteDb;

// IStorageInventory: owners are the first part of the compound keys (LiteDbKeys) of the roster and kv collections and
// the owner field of a LiteDB archive; archive logs know their owners from their index and memory tail. Archive
// collections are those with a log folder under archive/ and those kept in LiteDB ("archive_<name>").
public sealed partial class LiteDbStorage
{
    private const string ArchivePrefix = "archive_";

    public ValueTask<IReadOnlyList<string>> RosterOwnersAsync() => ValueTask.FromResult(KeyOwners("roster"));

    public ValueTask<IReadOnlyList<string>> KeyValueOwnersAsync() => ValueTask.FromResult(KeyOwners("kv"));

    public ValueTask<IReadOnlyList<string>> ArchiveCollectionsAsync()
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        var folder = Path.Combine(_dataDirectory, "archive");
        if (Directory.Exists(folder))
            foreach (var directory in Directory.EnumerateDirectories(folder))
                if (_logCollections.Contains(Path.GetFileName(directory)))
                    names.Add(Path.GetFileName(directory));
        foreach (var collection in Database.GetCollectionNames())
            if (collection.StartsWith(ArchivePrefix, StringComparison.Ordinal) && collection[ArchivePrefix.Length..] is { Length: > 0 } name
                && !IsLogBookkeeping(name))
                names.Add(name);
        return ValueTask.FromResult<IReadOnlyList<string>>([.. names]);
    }

    public ValueTask<IReadOnlyList<string>> ArchiveOwnersAsync(string collection)
    {
        switch (Archive(collection))
        {
            case LogArchiveStore log:
                return ValueTask.FromResult(log.Owners());
            default:
                var owners = Database.GetCollection(ArchivePrefix + collection).Query().Select("owner").ToEnumerable()
                    .Select(d => d["owner"].AsString);
                return ValueTask.FromResult<IReadOnlyList<string>>([.. new SortedSet<string>(owners, StringComparer.Ordinal)]);
        }
    }

    // What earlier versions of the archive logs kept in LiteDB: "archive_logs" and "archive_<log>_index".
    private bool IsLogBookkeeping(string name) =>
        name == "logs" || (name.EndsWith("_index", StringComparison.Ordinal) && _logCollections.Contains(name[..^"_index".Length]));

    private IReadOnlyList<string> KeyOwners(string collection)
    {
        var owners = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var document in Database.GetCollection(collection).Query().Select("_id").ToEnumerable())
        {
            var id = document["_id"].AsString;
            var separator = id.IndexOf(LiteDbKeys.Separator, StringComparison.Ordinal);
            if (separator >= 0) owners.Add(id[..separator]);
        }
        return [.. owners];
    }
}
