// XEP-0401 / XEP-0379 / XEP-0445: invitation tokens, kept in the key-value store so they work on every storage backend.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Invites;

/// Creates, finds and uses invitations. A token is 144 random bits in base64url (24 characters, safe in a URL path
/// and an xmpp: URI query). The store key is the token's SHA-256, and the stored hash is compared again in constant
/// time, so neither the lookup nor the comparison tells a guesser how close a wrong token was.
/// Uses are counted under one lock: atomic within this process (the server, or the CLI with the server stopped).
/// A cluster (issue 17) must count them in the database instead.
public sealed class InviteStore(IStorage storage, TimeProvider time)
{
    public const int TokenBytes = 18;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// The key-value owner of a domain's invitations: '/' cannot appear in an account's localpart (RFC 7622 §3.3.1),
    /// so it never collides with an account's own documents.
    private static string Owner(string domain) => domain + "/invites";

    public static string NewToken() => Base64Url(RandomNumberGenerator.GetBytes(TokenBytes));

    public static string IdOf(string token) => Base64Url(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// Stores a new invitation and returns it with its token (the only time the token exists outside the invitee's link).
    public async ValueTask<(Invite Invite, string Token)> CreateAsync(InviteKind kind, string domain, string? inviter, TimeSpan lifetime,
        int maxUses = 1, bool createsAccount = true, bool grantsAdmin = false)
    {
        if (maxUses < 1) throw new ArgumentOutOfRangeException(nameof(maxUses), "an invitation is good for at least one use");
        var token = NewToken();
        var now = time.GetUtcNow();
        var invite = new Invite(IdOf(token), kind, domain, inviter, now, now + lifetime, maxUses, 0, createsAccount, grantsAdmin && kind == InviteKind.Account);
        await SaveAsync(invite);
        return (invite, token);
    }

    /// The invitation a token names, if it exists, has not expired and has uses left; null otherwise (one answer for
    /// every reason, so a page or an error reveals nothing more).
    public async ValueTask<Invite?> FindAsync(string domain, string? token)
    {
        if (!LooksLikeToken(token)) return null;
        var invite = await ReadAsync(domain, token!);
        return invite is null || invite.IsExpired(time.GetUtcNow()) || invite.IsUsedUp ? null : invite;
    }

    /// Takes one use of the invitation when it is still valid and accept() agrees; the caller gives the use back with
    /// ReturnAsync when what it was for failed (a username already taken).
    public async ValueTask<Invite?> TryUseAsync(string domain, string? token, Func<Invite, bool> accept)
    {
        if (!LooksLikeToken(token)) return null;
        await _lock.WaitAsync();
        try
        {
            var invite = await ReadAsync(domain, token!);
            if (invite is null || invite.IsUsedUp || !accept(invite)) return null;
            if (invite.IsExpired(time.GetUtcNow()))
            {
                await storage.KeyValue.DeleteAsync(Owner(domain), invite.Id);
                return null;
            }
            var used = invite with { Uses = invite.Uses + 1 };
            await SaveAsync(used);
            return used;
        }
        finally { _lock.Release(); }
    }

    public async ValueTask ReturnAsync(Invite invite)
    {
        await _lock.WaitAsync();
        try
        {
            if (await storage.KeyValue.GetAsync(Owner(invite.Domain), invite.Id) is not { } bytes) return;
            var current = JsonSerializer.Deserialize<Invite>(bytes, Json)!;
            if (current.Uses > 0) await SaveAsync(current with { Uses = current.Uses - 1 });
        }
        finally { _lock.Release(); }
    }

    /// Every invitation of a domain that can still be used, for listing; expired ones are removed on the way.
    public async ValueTask<IReadOnlyList<Invite>> ListAsync(string domain)
    {
        var now = time.GetUtcNow();
        var list = new List<Invite>();
        foreach (var (key, bytes) in await storage.KeyValue.ListAsync(Owner(domain)))
        {
            var invite = JsonSerializer.Deserialize<Invite>(bytes, Json)!;
            if (invite.IsExpired(now)) await storage.KeyValue.DeleteAsync(Owner(domain), key);
            else if (!invite.IsUsedUp) list.Add(invite);
        }
        return list;
    }

    private async ValueTask<Invite?> ReadAsync(string domain, string token)
    {
        var id = IdOf(token);
        if (await storage.KeyValue.GetAsync(Owner(domain), id) is not { } bytes) return null;
        var invite = JsonSerializer.Deserialize<Invite>(bytes, Json);
        // The key matched, so this holds; compared in constant time all the same, in case a backend's key lookup is
        // ever case-insensitive or prefix-matching.
        return invite is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(invite.Id), Encoding.ASCII.GetBytes(id))
            ? invite : null;
    }

    private ValueTask SaveAsync(Invite invite) =>
        storage.KeyValue.SetAsync(Owner(invite.Domain), invite.Id, JsonSerializer.SerializeToUtf8Bytes(invite, Json));

    /// Tokens are base64url of TokenBytes bytes; anything else is refused before it reaches storage.
    private static bool LooksLikeToken(string? token) =>
        token is { Length: 24 } && token.All(ch => ch is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_');
}
