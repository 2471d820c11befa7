using System.Text;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

/// IStorageInventory, what xmppd migrate walks: every owner of roster items, documents and archive records, and every
/// archive collection, whether kept in an archive log, in LiteDB or in PostgreSQL, and whether opened or not.
[Category("PostgreSql")]
[TestFixture("embedded")]
[TestFixture("postgresql")]
public sealed class StorageInventoryTests(string kind)
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectories _directories = new();
    private readonly PostgresTestDatabase _database = new("inventory");
    private string _dataDir = null!;

    [SetUp]
    public void Prepare() => _dataDir = _directories.Create();

    [TearDown]
    public void Cleanup() => _directories.DeleteAll();

    private async Task<IStorage> OpenAsync(bool fresh) => kind == "embedded"
        ? new LiteDbStorage(_dataDir)
        : fresh ? await _database.OpenFreshAsync() : await Xmpp.Storage.Postgres.PostgresStorage.OpenAsync(await _database.ConnectionStringAsync());

    private static RosterItem Item(string jid) => new(jid, null, [], Subscription.Both, false, false, false, true);

    [Test]
    public async Task Every_owner_and_archive_collection_is_listed_after_a_restart()
    {
        await using (var storage = await OpenAsync(fresh: true))
        {
            await storage.Rosters.SetItemAsync("romeo", Item("juliet@capulet.lit"));
            await storage.Rosters.SetItemAsync("juliet", Item("romeo@montague.lit"));
            await storage.KeyValue.SetAsync("romeo", "vcard", "<vCard/>"u8.ToArray());
            await storage.KeyValue.SetAsync("conference.localhost", "tea", "{}"u8.ToArray());
            foreach (var (collection, owner) in new[] { ("mam", "romeo"), ("mam", "juliet"), ("offline", "nurse"), ("requests", "romeo"), ("extra", "tybalt") })
                await storage.Archive(collection).AppendAsync(owner, T0, "peer@localhost", Encoding.UTF8.GetBytes("<message/>"));
        }

        await using var reopened = await OpenAsync(fresh: false);
        var inventory = (IStorageInventory)reopened;
        Assert.That(await inventory.RosterOwnersAsync(), Is.EqualTo(new[] { "juliet", "romeo" }));
        Assert.That(await inventory.KeyValueOwnersAsync(), Is.EqualTo(new[] { "conference.localhost", "romeo" }));
        Assert.That(await inventory.ArchiveCollectionsAsync(), Is.SupersetOf(new[] { "extra", "mam", "offline", "requests" }));
        Assert.That(await inventory.ArchiveOwnersAsync("mam"), Is.EqualTo(new[] { "juliet", "romeo" }));
        Assert.That(await inventory.ArchiveOwnersAsync("offline"), Is.EqualTo(new[] { "nurse" }));
        Assert.That(await inventory.ArchiveOwnersAsync("requests"), Is.EqualTo(new[] { "romeo" }));
        Assert.That(await inventory.ArchiveOwnersAsync("extra"), Is.EqualTo(new[] { "tybalt" }));
    }
}
