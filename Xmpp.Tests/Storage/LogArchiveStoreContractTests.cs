using Xmpp.Storage;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Tests.Storage;

// The archive log ("mam" and "muc"), with segments small enough that the contract's records span several of them.
[TestFixture]
public sealed class LogArchiveStoreContractTests : ArchiveStoreContract
{
    private readonly TemporaryDirectories _directories = new();

    protected override IStorage CreateStorage() => new LiteDbStorage(_directories.Create(), LiteDbStorage.LogCollections, segmentBytes: 512);

    protected override void CleanUp() => _directories.DeleteAll();
}
