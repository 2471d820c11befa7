// XEP-0484: Fast Authentication Streamlining Tokens — issuing, checking, rotating and revoking tokens.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Xmpp.Protocol.Sasl;
using Xmpp.Server.Hosting;
using Xmpp.Storage;

namespace Xmpp.Server.Auth;

/// Tokens per account and client (SASL2 user-agent id), two slots each as XEP-0484 §6.1 suggests: 'new' holds a
/// token issued but not yet used, 'current' the one the client last logged in with. The database never holds a
/// token: only a random salt from which the token is derived with a server key kept in its own file, so a copy of
/// the database alone logs nobody in. Password change and account deletion drop all of an account's tokens.
public sealed class FastTokenService
{
    /// Clients with tokens per account; the one with the oldest token makes room for a new one.
    public const int MaxClientsPerAccount = 32;

    internal const string StorageKey = "fast-tokens";

    private readonly IStorage _storage;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lifetime;
    private readonly Lazy<byte[]> _key;
    private readonly SemaphoreSlim _lock = new(1, 1);

    public FastTokenService(IStorage storage, XmppServerOptions options, TimeProvider time)
    {
        _storage = storage;
        _time = time;
        _lifetime = TimeSpan.FromDays(options.Auth.FastTokenDays);
        _key = new Lazy<byte[]>(() => LoadOrCreateKey(Path.Combine(Path.GetFullPath(options.DataDir), "fast-token.key")));
    }

    public sealed record Issued(string Token, DateTimeOffset Expiry);

    /// What a successful token login found: the token itself (to compute the server's answer) and whether it is due for rotation.
    public sealed record Verified(byte[] Token, bool RotationDue);

    public enum Check { Ok, Invalid, Expired }

    internal sealed class Slot
    {
        public string Salt { get; set; } = "";
        public string Mechanism { get; set; } = "";
        public DateTimeOffset Expiry { get; set; }
        public long Count { get; set; }
    }

    internal sealed class Client
    {
        public Slot? Current { get; set; }
        public Slot? New { get; set; }
    }

    /// Checks an HT initiator hash against the client's tokens ('new' first), enforcing expiry, the mechanism the token
    /// was issued for (§3.4) and, when the client sent one, a count above every count already used (§3.4, replay).
    public async ValueTask<(Check Result, Verified? Token)> VerifyAsync(string user, string userAgentId, string mechanism,
        byte[] initiatorHash, ReadOnlyMemory<byte> channelBinding, long? count)
    {
        await _lock.WaitAsync();
        try
        {
            var book = await LoadAsync(user);
            if (!book.TryGetValue(AgentKey(userAgentId), out var client)) return (Check.Invalid, null);
            foreach (var fromNew in new[] { true, false })
            {
                var slot = fromNew ? client.New : client.Current;
                if (slot is null) continue;
                var token = Encoding.UTF8.GetBytes(TokenText(DeriveToken(user, userAgentId, slot.Salt)));
                var expected = HashedToken.Initiator(token, channelBinding.Span);
                if (!CryptographicOperations.FixedTimeEquals(expected, initiatorHash)) continue;
                if (slot.Expiry <= _time.GetUtcNow()) return (Check.Expired, null);
                if (slot.Mechanism != mechanism) return (Check.Invalid, null);
                if (count is { } c && c <= slot.Count) return (Check.Invalid, null);
                if (count is { } used) slot.Count = used;
                // §6.1: a used 'new' token becomes 'current'; the older one it replaces is thereby invalidated (§3.5).
                if (fromNew) { client.Current = slot; client.New = null; }
                await SaveAsync(user, book);
                bool due = client.New is null && slot.Expiry - _time.GetUtcNow() < _lifetime / 2;
                return (Check.Ok, new Verified(token, due));
            }
            return (Check.Invalid, null);
        }
        finally { _lock.Release(); }
    }

    /// A fresh token for the mechanism, placed in the 'new' slot: the previous unused one is dropped (§3.5 SHOULD),
    /// the current one stays valid until the new one is used.
    public async ValueTask<Issued> IssueAsync(string user, string userAgentId, string mechanism)
    {
        await _lock.WaitAsync();
        try
        {
            var book = await LoadAsync(user);
            var agent = AgentKey(userAgentId);
            if (!book.TryGetValue(agent, out var client))
            {
                if (book.Count >= MaxClientsPerAccount)
                    book.Remove(book.MinBy(kv => Latest(kv.Value)).Key);
                book[agent] = client = new Client();
            }
            var slot = new Slot
            {
                Salt = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
                Mechanism = mechanism,
                Expiry = _time.GetUtcNow().Add(_lifetime),
            };
            client.New = slot;
            await SaveAsync(user, book);
            return new Issued(TokenText(DeriveToken(user, userAgentId, slot.Salt)), slot.Expiry);
        }
        finally { _lock.Release(); }
    }

    /// §3.6: the client logged in with invalidate='true'; none of its tokens works any more.
    public async ValueTask InvalidateAsync(string user, string userAgentId)
    {
        await _lock.WaitAsync();
        try
        {
            var book = await LoadAsync(user);
            if (book.Remove(AgentKey(userAgentId))) await SaveAsync(user, book);
        }
        finally { _lock.Release(); }
    }

    /// Every token of the account stops working (password change, account deletion).
    public static ValueTask RevokeAllAsync(IStorage storage, string user) =>
        new(storage.KeyValue.DeleteAsync(user, StorageKey).AsTask());

    private static DateTimeOffset Latest(Client c) =>
        new[] { c.Current?.Expiry, c.New?.Expiry }.Max() ?? DateTimeOffset.MinValue;

    private async ValueTask<Dictionary<string, Client>> LoadAsync(string user)
    {
        var bytes = await _storage.KeyValue.GetAsync(user, StorageKey);
        if (bytes is null) return new(StringComparer.Ordinal);
        try { return JsonSerializer.Deserialize<Dictionary<string, Client>>(bytes) ?? new(StringComparer.Ordinal); }
        catch (JsonException) { return new(StringComparer.Ordinal); }
    }

    private ValueTask SaveAsync(string user, Dictionary<string, Client> book) =>
        _storage.KeyValue.SetAsync(user, StorageKey, JsonSerializer.SerializeToUtf8Bytes(book));

    // The user-agent id is the client's own identifier; only its hash is stored.
    private static string AgentKey(string userAgentId) =>
        Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(userAgentId)));

    private byte[] DeriveToken(string user, string userAgentId, string salt) =>
        HMACSHA256.HashData(_key.Value, Encoding.UTF8.GetBytes($"{user}\0{userAgentId}\0{salt}"));

    // The token the client receives and uses as the HMAC key: its UTF-8 text (XEP-0484 §3.2 gives it as an attribute).
    private static string TokenText(byte[] secret) => Convert.ToBase64String(secret);

    private static byte[] LoadOrCreateKey(string path)
    {
        if (File.Exists(path)) return Convert.FromBase64String(File.ReadAllText(path).Trim());
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var key = RandomNumberGenerator.GetBytes(32);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var f = new StreamWriter(path, Encoding.ASCII, options);
            f.Write(Convert.ToBase64String(key));
        }
        catch (IOException) when (File.Exists(path))
        {
            return Convert.FromBase64String(File.ReadAllText(path).Trim());
        }
        return key;
    }
}
