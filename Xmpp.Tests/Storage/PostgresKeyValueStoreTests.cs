using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresKeyValueStoreTests : KeyValueStoreContract
{
    private readonly PostgresTestDatabase _database = new("KeyValue");

    protected override IStorage CreateStorage() => _database.OpenFresh();
}
