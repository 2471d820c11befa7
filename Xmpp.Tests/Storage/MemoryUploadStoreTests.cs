using Xmpp.Storage;
using Xmpp.Storage.Memory;

namespace Xmpp.Tests.Storage;

[TestFixture]
public sealed class MemoryUploadStoreTests : UploadStoreContract
{
    protected override IStorage CreateStorage() => new MemoryStorage();
}
