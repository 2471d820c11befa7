using Npgsql;

namespace Xmpp.Storage.Postgres;

// Table kv: one row per (owner, key).
internal sealed class PostgresKeyValueStore(NpgsqlDataSource source, PostgresWriter writer) : IKeyValueStore
{
    public async ValueTask<byte[]?> GetAsync(string owner, string key)
    {
        await using var command = source.CreateCommand("SELECT value FROM kv WHERE owner = $1 AND key = $2");
        command.Parameters.Add(Text(owner));
        command.Parameters.Add(Text(key));
        return await writer.Health.ScalarAsync(command).ConfigureAwait(false) as byte[];
    }

    public ValueTask SetAsync(string owner, string key, ReadOnlyMemory<byte> value)
    {
        var bytes = value.ToArray();
        return new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand(
                "INSERT INTO kv (owner, key, value) VALUES ($1, $2, $3) ON CONFLICT (owner, key) DO UPDATE SET value = EXCLUDED.value",
                connection);
            command.Parameters.Add(Text(owner));
            command.Parameters.Add(Text(key));
            command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = bytes });
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }));
    }

    public ValueTask<bool> DeleteAsync(string owner, string key) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand("DELETE FROM kv WHERE owner = $1 AND key = $2", connection);
            command.Parameters.Add(Text(owner));
            command.Parameters.Add(Text(key));
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
        }));

    public ValueTask DeleteAllAsync(string owner) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand("DELETE FROM kv WHERE owner = $1", connection);
            command.Parameters.Add(Text(owner));
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }));

    public async ValueTask<IReadOnlyList<KeyValuePair<string, byte[]>>> ListAsync(string owner)
    {
        await using var command = source.CreateCommand("SELECT key, value FROM kv WHERE owner = $1 ORDER BY key");
        command.Parameters.Add(Text(owner));
        await using var reader = await writer.Health.ReaderAsync(command).ConfigureAwait(false);
        var list = new List<KeyValuePair<string, byte[]>>();
        while (await reader.ReadAsync().ConfigureAwait(false))
            list.Add(KeyValuePair.Create(reader.GetString(0), (byte[])reader[1]));
        return list;
    }

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };
}
