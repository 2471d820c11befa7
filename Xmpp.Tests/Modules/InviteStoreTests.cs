using System.Text;
using Xmpp.Server.Modules.Invites;
using Xmpp.Storage.LiteDb;
using Xmpp.Storage.Memory;

namespace Xmpp.Tests.Modules;

/// The invitation store on its own: what it keeps, and that uses are counted exactly under concurrency.
[TestFixture]
public sealed class InviteStoreTests
{
    [Test]
    public async Task Tokens_are_random_url_safe_and_only_their_hash_is_stored()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-invite-store-" + Guid.NewGuid().ToString("N"));
        try
        {
            string token;
            await using (var storage = new LiteDbStorage(dir))
            {
                var store = new InviteStore(storage, TimeProvider.System);
                (_, token) = await store.CreateAsync(InviteKind.Account, "localhost", "alice@localhost", TimeSpan.FromDays(1));
                var (_, other) = await store.CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1));
                Assert.That(token, Does.Match("^[A-Za-z0-9_-]{24}$"));
                Assert.That(other, Is.Not.EqualTo(token));
                Assert.That(await store.FindAsync("localhost", token), Is.Not.Null);
                Assert.That(await store.FindAsync("other.example", token), Is.Null, "an invitation belongs to its domain");
                await storage.FlushAsync();
            }
            var bytes = File.ReadAllBytes(Path.Combine(dir, "xmpp.db"));
            var text = Encoding.UTF8.GetString(bytes) + Encoding.Unicode.GetString(bytes);
            Assert.That(text, Does.Contain(InviteStore.IdOf(token)), "the hash is the key");
            Assert.That(text, Does.Not.Contain(token), "the token itself is nowhere in the database");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task Concurrent_uses_of_a_five_use_invitation_succeed_exactly_five_times_and_a_returned_use_can_be_taken_again()
    {
        await using var storage = new MemoryStorage();
        var store = new InviteStore(storage, TimeProvider.System);
        var (_, token) = await store.CreateAsync(InviteKind.Account, "localhost", null, TimeSpan.FromDays(1), maxUses: 5);
        var results = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(async () => await store.TryUseAsync("localhost", token, _ => true))));
        Assert.That(results.Count(r => r is not null), Is.EqualTo(5));
        Assert.That(await store.FindAsync("localhost", token), Is.Null, "used up");
        await store.ReturnAsync(results.First(r => r is not null)!);
        Assert.That(await store.TryUseAsync("localhost", token, _ => true), Is.Not.Null);
        Assert.That(await store.TryUseAsync("localhost", token, _ => true), Is.Null);
    }
}
