using Xmpp.Storage;
using Xmpp.Storage.Memory;

namespace Xmpp.Tests.Storage;

[TestFixture]
public sealed class MemoryArchiveStoreTests : ArchiveStoreContract
{
    protected override IStorage CreateStorage() => new MemoryStorage();
}
