using Npgsql;

namespace Xmpp.Storage.Postgres;

// Table uploads: one row per completed upload, indexed by owner (quota) and creation time (retention).
internal sealed class PostgresUploadStore(NpgsqlDataSource source, PostgresWriter writer) : IUploadStore
{
    private const string Columns = "id, owner, file_name, content_type, size, created";

    public ValueTask<bool> AddAsync(UploadRecord record) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand(
                $"INSERT INTO uploads ({Columns}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING", connection);
            command.Parameters.Add(Text(record.Id));
            command.Parameters.Add(Text(record.Owner));
            command.Parameters.Add(Text(record.FileName));
            command.Parameters.Add(Text(record.ContentType));
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = record.Size });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = record.Created.UtcTicks });
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
        }));

    public async ValueTask<UploadRecord?> GetAsync(string id)
    {
        var found = await ReadAsync($"SELECT {Columns} FROM uploads WHERE id = $1", Text(id)).ConfigureAwait(false);
        return found.Count > 0 ? found[0] : null;
    }

    public ValueTask<bool> DeleteAsync(string id) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand("DELETE FROM uploads WHERE id = $1", connection);
            command.Parameters.Add(Text(id));
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
        }));

    public async ValueTask<long> UsedBytesAsync(string owner)
    {
        await using var command = source.CreateCommand("SELECT COALESCE(sum(size), 0)::bigint FROM uploads WHERE owner = $1");
        command.Parameters.Add(Text(owner));
        return (long)(await writer.Health.ScalarAsync(command).ConfigureAwait(false))!;
    }

    public async ValueTask<IReadOnlyList<UploadRecord>> ListByOwnerAsync(string owner) =>
        await ReadAsync($"SELECT {Columns} FROM uploads WHERE owner = $1 ORDER BY created, id", Text(owner)).ConfigureAwait(false);

    public async ValueTask<IReadOnlyList<UploadRecord>> ListCreatedBeforeAsync(DateTimeOffset before, int limit) =>
        await ReadAsync($"SELECT {Columns} FROM uploads WHERE created < $1 ORDER BY created, id LIMIT $2",
            new NpgsqlParameter<long> { TypedValue = before.UtcTicks }, new NpgsqlParameter<int> { TypedValue = limit }).ConfigureAwait(false);

    private async Task<List<UploadRecord>> ReadAsync(string sql, params NpgsqlParameter[] parameters)
    {
        await using var command = source.CreateCommand(sql);
        command.Parameters.AddRange(parameters);
        await using var reader = await writer.Health.ReaderAsync(command).ConfigureAwait(false);
        var list = new List<UploadRecord>();
        while (await reader.ReadAsync().ConfigureAwait(false))
            list.Add(new UploadRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.GetInt64(4), new DateTimeOffset(reader.GetInt64(5), TimeSpan.Zero)));
        return list;
    }

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };
}
