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

    // On the writer's connection inside its group transaction: the advisory lock on (owner, key) is held until that
    // group commits, so another node's update of the same document waits and then reads this one's committed value
    // (a row lock would not cover a document that does not exist yet). Run again after a rolled-back group, change
    // computes again from what is stored then.
    public ValueTask<byte[]?> UpdateAsync(string owner, string key, Func<byte[]?, byte[]?> change) =>
        new(writer.Enqueue(async connection =>
        {
            await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))", connection))
            {
                lockCommand.Parameters.Add(Text(owner));
                lockCommand.Parameters.Add(Text(key));
                await lockCommand.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            byte[]? current;
            await using (var read = new NpgsqlCommand("SELECT value FROM kv WHERE owner = $1 AND key = $2", connection))
            {
                read.Parameters.Add(Text(owner));
                read.Parameters.Add(Text(key));
                current = await read.ExecuteScalarAsync().ConfigureAwait(false) as byte[];
            }
            var next = change(current);
            await using var write = next is null
                ? new NpgsqlCommand("DELETE FROM kv WHERE owner = $1 AND key = $2", connection)
                : new NpgsqlCommand("INSERT INTO kv (owner, key, value) VALUES ($1, $2, $3) ON CONFLICT (owner, key) DO UPDATE SET value = EXCLUDED.value", connection);
            write.Parameters.Add(Text(owner));
            write.Parameters.Add(Text(key));
            if (next is not null) write.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = next });
            await write.ExecuteNonQueryAsync().ConfigureAwait(false);
            return next;
        }));

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
