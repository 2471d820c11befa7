using Npgsql;
using Xmpp.Storage;
using Xmpp.Storage.Postgres;

namespace Xmpp.Tests.Support;

/// One database of the shared PostgreSQL instance for one test fixture, created on first use (the fixture's first
/// storage creates the schema, as a first start does); OpenFresh empties it and opens a storage on it, so each test
/// starts with no data.
public sealed class PostgresTestDatabase(string prefix)
{
    private string? _name;

    public async Task<string> ConnectionStringAsync()
    {
        var instance = await PostgresInstance.GetAsync();
        _name ??= await instance.CreateDatabaseAsync(prefix);
        return instance.ConnectionString(_name);
    }

    public async Task ResetAsync()
    {
        if (_name is null)
        {
            await ConnectionStringAsync(); // a new database: nothing to empty
            return;
        }
        await (await PostgresInstance.GetAsync()).EmptyDatabaseAsync(_name);
    }

    public async Task<PostgresStorage> OpenFreshAsync(TimeSpan? purgeInterval = null)
    {
        await ResetAsync();
        return await PostgresStorage.OpenAsync(await ConnectionStringAsync(), purgeInterval: purgeInterval);
    }

    public IStorage OpenFresh() => OpenFreshAsync().GetAwaiter().GetResult();
    /// Every row of every table of a database as text, one after another: what a test that looks for a secret in
    /// the embedded store's files searches on PostgreSQL.
    public static async Task<byte[]> DumpAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        var tables = new List<string>();
        await using (var list = new NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", connection))
        await using (var reader = await list.ExecuteReaderAsync())
            while (await reader.ReadAsync())
                tables.Add(reader.GetString(0));
        using var dump = new MemoryStream();
        foreach (var table in tables)
        {
            // A row's text form shows bytea as hex, so byte columns are added as they are (escape form) too.
            await using var rows = new NpgsqlCommand($"SELECT t::text FROM \"{table}\" t", connection);
            await using var reader = await rows.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                dump.Write(System.Text.Encoding.UTF8.GetBytes(reader.GetString(0)));
        }
        await using (var bytes = new NpgsqlCommand(
            "SELECT string_agg(encode(value, 'escape'), '') FROM kv", connection))
            if (await bytes.ExecuteScalarAsync() is string text)
                dump.Write(System.Text.Encoding.UTF8.GetBytes(text));
        return dump.ToArray();
    }
}
