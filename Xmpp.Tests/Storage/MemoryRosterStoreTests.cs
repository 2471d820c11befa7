using Xmpp.Storage;
using Xmpp.Storage.Memory;

namespace Xmpp.Tests.Storage;

[TestFixture]
public sealed class MemoryRosterStoreTests : RosterStoreContract
{
    protected override IStorage CreateStorage() => new MemoryStorage();
}
