using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresUploadStoreTests : UploadStoreContract
{
    private readonly PostgresTestDatabase _database = new("Upload");

    protected override IStorage CreateStorage() => _database.OpenFresh();
}
