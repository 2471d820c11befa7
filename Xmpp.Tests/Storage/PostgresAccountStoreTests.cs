using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresAccountStoreTests : AccountStoreContract
{
    private readonly PostgresTestDatabase _database = new("Account");

    protected override IStorage CreateStorage() => _database.OpenFresh();
}
