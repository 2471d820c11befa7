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
}
