using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresRosterStoreTests : RosterStoreContract
{
    private readonly PostgresTestDatabase _database = new("Roster");

    protected override IStorage CreateStorage() => _database.OpenFresh();
}
