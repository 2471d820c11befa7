using Npgsql;

namespace Xmpp.Storage.Postgres;

// IStorageInventory, for xmppd migrate: distinct owners per table (a scan, which a migration can afford).
public sealed partial class PostgresStorage
{
    public ValueTask<IReadOnlyList<string>> RosterOwnersAsync() => ListAsync("SELECT DISTINCT username FROM roster_items ORDER BY 1");

    public ValueTask<IReadOnlyList<string>> KeyValueOwnersAsync() => ListAsync("SELECT DISTINCT owner FROM kv ORDER BY 1");

    public ValueTask<IReadOnlyList<string>> ArchiveCollectionsAsync() =>
        ListAsync("SELECT name COLLATE \"C\" FROM archive_collections ORDER BY 1");

    public ValueTask<IReadOnlyList<string>> ArchiveOwnersAsync(string collection)
    {
        ArchiveCollectionName.Validate(collection);
        _ = Archive(collection);
        return ListAsync($"SELECT DISTINCT owner FROM archive_{collection} ORDER BY 1");
    }

    private async ValueTask<IReadOnlyList<string>> ListAsync(string sql)
    {
        await using var command = _source.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var list = new List<string>();
        while (await reader.ReadAsync().ConfigureAwait(false))
            list.Add(reader.GetString(0));
        return list;
    }
}
