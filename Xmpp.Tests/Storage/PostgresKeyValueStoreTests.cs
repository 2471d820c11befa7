using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Storage;

[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresKeyValueStoreTests : KeyValueStoreContract
{
    private readonly PostgresTestDatabase _database = new("KeyValue");

    protected override IStorage CreateStorage() => _database.OpenFresh();

    [Test]
    public async Task Updates_of_one_document_from_two_storages_at_once_lose_nothing()
    {
        // Two storages on one database have two writers, as two cluster nodes do.
        await using var other = await Xmpp.Storage.Postgres.PostgresStorage.OpenAsync(await _database.ConnectionStringAsync());
        static byte[] Append(byte[]? current, string line) => System.Text.Encoding.UTF8.GetBytes(
            (current is null ? "" : System.Text.Encoding.UTF8.GetString(current)) + line + "\n");
        var writes = new List<Task>();
        for (int i = 0; i < 40; i++)
        {
            int n = i;
            writes.Add(Storage.KeyValue.UpdateAsync("juliet", "blocklist", c => Append(c, "a" + n)).AsTask());
            writes.Add(other.KeyValue.UpdateAsync("juliet", "blocklist", c => Append(c, "b" + n)).AsTask());
        }
        await Task.WhenAll(writes);
        var lines = System.Text.Encoding.UTF8.GetString((await Storage.KeyValue.GetAsync("juliet", "blocklist"))!)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(80));
        Assert.That(lines.Distinct().Count(), Is.EqualTo(80));
    }
}
