using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresArchiveStoreTests : ArchiveStoreContract
{
    private readonly PostgresTestDatabase _database = new("Archive");

    protected override IStorage CreateStorage() => _database.OpenFresh();
}
