using System.Text;
using Xmpp.Protocol.Sasl;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Storage.Memory;

namespace Xmpp.Tests.Server;

/// The time-dependent rules of XEP-0484 tokens, with a clock the test moves.
public sealed class FastTokenServiceTests
{
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private string _dir = null!;

    [SetUp]
    public void CreateDir() => _dir = Path.Combine(Path.GetTempPath(), "xmpp-fast-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void DeleteDir()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private (FastTokenService Service, ManualClock Clock) Create()
    {
        var clock = new ManualClock();
        var options = new XmppServerOptions { DataDir = _dir };
        options.Auth.FastTokenDays = 14;
        return (new FastTokenService(new MemoryStorage(), options, clock), clock);
    }

    private static byte[] Proof(string token) => HashedToken.Initiator(Encoding.UTF8.GetBytes(token), []);

    [Test]
    public async Task A_token_used_in_the_second_half_of_its_life_is_due_for_rotation()
    {
        var (fast, clock) = Create();
        var issued = await fast.IssueAsync("alice", "ua", HashedToken.Sha256None);
        clock.Now += TimeSpan.FromDays(6);
        var (early, earlyToken) = await fast.VerifyAsync("alice", "ua", HashedToken.Sha256None, Proof(issued.Token), Array.Empty<byte>(), null);
        Assert.That(early, Is.EqualTo(FastTokenService.Check.Ok));
        Assert.That(earlyToken!.RotationDue, Is.False);
        clock.Now += TimeSpan.FromDays(2);
        var (late, lateToken) = await fast.VerifyAsync("alice", "ua", HashedToken.Sha256None, Proof(issued.Token), Array.Empty<byte>(), null);
        Assert.That(late, Is.EqualTo(FastTokenService.Check.Ok));
        Assert.That(lateToken!.RotationDue, Is.True);
    }

    [Test]
    public async Task An_expired_token_is_refused_as_expired()
    {
        var (fast, clock) = Create();
        var issued = await fast.IssueAsync("alice", "ua", HashedToken.Sha256None);
        clock.Now += TimeSpan.FromDays(14) + TimeSpan.FromSeconds(1);
        var (check, _) = await fast.VerifyAsync("alice", "ua", HashedToken.Sha256None, Proof(issued.Token), Array.Empty<byte>(), null);
        Assert.That(check, Is.EqualTo(FastTokenService.Check.Expired));
    }

    [Test]
    public async Task The_number_of_clients_with_tokens_per_account_is_bounded_and_the_oldest_makes_room()
    {
        var (fast, clock) = Create();
        var first = await fast.IssueAsync("alice", "ua-0", HashedToken.Sha256None);
        for (int i = 1; i <= FastTokenService.MaxClientsPerAccount; i++)
        {
            clock.Now += TimeSpan.FromMinutes(1);
            await fast.IssueAsync("alice", "ua-" + i, HashedToken.Sha256None);
        }
        var (check, _) = await fast.VerifyAsync("alice", "ua-0", HashedToken.Sha256None, Proof(first.Token), Array.Empty<byte>(), null);
        Assert.That(check, Is.EqualTo(FastTokenService.Check.Invalid), "the oldest client's token was dropped for the newest");
    }

    [Test]
    public async Task The_token_key_survives_a_new_service_instance_on_the_same_data_folder()
    {
        var storage = new MemoryStorage();
        var options = new XmppServerOptions { DataDir = _dir };
        var issued = await new FastTokenService(storage, options, TimeProvider.System).IssueAsync("alice", "ua", HashedToken.Sha256None);
        var again = new FastTokenService(storage, options, TimeProvider.System);
        var (check, _) = await again.VerifyAsync("alice", "ua", HashedToken.Sha256None, Proof(issued.Token), Array.Empty<byte>(), null);
        Assert.That(check, Is.EqualTo(FastTokenService.Check.Ok));
    }
}
