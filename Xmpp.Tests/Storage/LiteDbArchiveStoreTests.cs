using Xmpp.Storage;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Tests.Storage;

// Every collection in LiteDB, as the offline spool is (the contract uses "mam", which is otherwise an archive log).
[TestFixture]
public sealed class LiteDbArchiveStoreTests : ArchiveStoreContract
{
    private readonly TemporaryDirectories _directories = new();

    protected override IStorage CreateStorage() => new LiteDbStorage(_directories.Create(), new HashSet<string>());

    protected override void CleanUp() => _directories.DeleteAll();
}
