using Xmpp.Storage;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Tests.Storage;

[TestFixture]
public sealed class LiteDbUploadStoreTests : UploadStoreContract
{
    private readonly TemporaryDirectories _directories = new();

    protected override IStorage CreateStorage() => new LiteDbStorage(_directories.Create());

    protected override void CleanUp() => _directories.DeleteAll();
}
