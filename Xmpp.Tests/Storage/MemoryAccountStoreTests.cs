using Xmpp.Storage;
using Xmpp.Storage.Memory;

namespace Xmpp.Tests.Storage;

[TestFixture]
public sealed class MemoryAccountStoreTests : AccountStoreContract
{
    protected override IStorage CreateStorage() => new MemoryStorage();
}
