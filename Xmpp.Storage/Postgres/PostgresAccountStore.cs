using Npgsql;

namespace Xmpp.Storage.Postgres;

// Table accounts: one row per account, its SCRAM credentials as parallel arrays.
internal sealed class PostgresAccountStore(NpgsqlDataSource source, PostgresWriter writer) : IAccountStore
{
    private const string Columns = "username, created, last_logout, last_status, scram_hash, scram_salt, scram_iterations, scram_stored_key, scram_server_key";

    public async ValueTask<Account?> FindAsync(string username)
    {
        await using var command = source.CreateCommand($"SELECT {Columns} FROM accounts WHERE username = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = username });
        await using var reader = await writer.Health.ReaderAsync(command).ConfigureAwait(false);
        if (!await reader.ReadAsync().ConfigureAwait(false))
            return null;
        var hashes = reader.GetFieldValue<string[]>(4);
        var salts = reader.GetFieldValue<byte[][]>(5);
        var iterations = reader.GetFieldValue<int[]>(6);
        var storedKeys = reader.GetFieldValue<byte[][]>(7);
        var serverKeys = reader.GetFieldValue<byte[][]>(8);
        var credentials = new ScramKeys[hashes.Length];
        for (var i = 0; i < credentials.Length; i++)
            credentials[i] = new ScramKeys(hashes[i], salts[i], iterations[i], storedKeys[i], serverKeys[i]);
        return new Account(
            reader.GetString(0),
            credentials,
            Stamp(reader.GetInt64(1)),
            reader.IsDBNull(2) ? null : Stamp(reader.GetInt64(2)),
            reader.IsDBNull(3) ? null : reader.GetString(3));
    }

    public ValueTask<bool> CreateAsync(Account account)
    {
        var parameters = Parameters(account);
        return new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand(
                $"INSERT INTO accounts ({Columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (username) DO NOTHING", connection);
            command.Parameters.AddRange(Clone(parameters));
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
        }));
    }

    public ValueTask UpdateAsync(Account account)
    {
        var parameters = Parameters(account);
        return new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand("""
                UPDATE accounts SET created = $2, last_logout = $3, last_status = $4, scram_hash = $5, scram_salt = $6,
                    scram_iterations = $7, scram_stored_key = $8, scram_server_key = $9
                WHERE username = $1
                """, connection);
            command.Parameters.AddRange(Clone(parameters));
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }));
    }

    public ValueTask RecordLogoutAsync(string username, DateTimeOffset at, string? status) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand("UPDATE accounts SET last_logout = $2, last_status = $3 WHERE username = $1", connection);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = username });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = at.UtcTicks });
            command.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = status });
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }));

    public ValueTask<bool> DeleteAsync(string username) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand("DELETE FROM accounts WHERE username = $1", connection);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = username });
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
        }));

    public async ValueTask<IReadOnlyList<string>> ListAsync()
    {
        await using var command = source.CreateCommand("SELECT username FROM accounts ORDER BY username");
        await using var reader = await writer.Health.ReaderAsync(command).ConfigureAwait(false);
        var names = new List<string>();
        while (await reader.ReadAsync().ConfigureAwait(false))
            names.Add(reader.GetString(0));
        return names;
    }

    public async ValueTask<int> CountAsync()
    {
        await using var command = source.CreateCommand("SELECT count(*) FROM accounts");
        return (int)(long)(await writer.Health.ScalarAsync(command).ConfigureAwait(false))!;
    }

    // Built when the write is queued: the store must hold what the caller passed then, whatever it changes later.
    private static NpgsqlParameter[] Parameters(Account account)
    {
        var keys = account.Credentials;
        return
        [
            new NpgsqlParameter<string> { TypedValue = account.Username },
            new NpgsqlParameter<long> { TypedValue = account.Created.UtcTicks },
            new NpgsqlParameter<long?> { TypedValue = account.LastLogout?.UtcTicks },
            new NpgsqlParameter<string?> { TypedValue = account.LastStatus },
            new NpgsqlParameter<string[]> { TypedValue = keys.Select(k => k.Hash).ToArray() },
            new NpgsqlParameter<byte[][]> { TypedValue = keys.Select(k => k.Salt.ToArray()).ToArray() },
            new NpgsqlParameter<int[]> { TypedValue = keys.Select(k => k.Iterations).ToArray() },
            new NpgsqlParameter<byte[][]> { TypedValue = keys.Select(k => k.StoredKey.ToArray()).ToArray() },
            new NpgsqlParameter<byte[][]> { TypedValue = keys.Select(k => k.ServerKey.ToArray()).ToArray() },
        ];
    }

    // A parameter belongs to one command, and a write may run again in a new command after a rolled-back group.
    internal static NpgsqlParameter[] Clone(NpgsqlParameter[] parameters) => parameters.Select(p => p.Clone()).ToArray();

    private static DateTimeOffset Stamp(long ticks) => new(ticks, TimeSpan.Zero);
}
