using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Server.Links.S2s;

/// XEP-0185 §3: key = HEX(HMAC-SHA256(SHA256(secret), receiving + ' ' + originating + ' ' + stream id)). Only this
/// server ever checks its own keys (through db:verify), so the secret never leaves it.
internal sealed class DialbackKeys
{
    private readonly byte[] _hashedSecret;

    public DialbackKeys(string secret)
    {
        var bytes = secret.Length > 0 ? Encoding.UTF8.GetBytes(secret) : RandomNumberGenerator.GetBytes(32);
        _hashedSecret = SHA256.HashData(bytes);
    }

    public string Generate(string receiving, string originating, string streamId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_hashedSecret, Encoding.UTF8.GetBytes(receiving + " " + originating + " " + streamId)));

    public bool Verify(string receiving, string originating, string streamId, string key)
    {
        var expected = Encoding.ASCII.GetBytes(Generate(receiving, originating, streamId));
        var given = Encoding.ASCII.GetBytes(key.Trim().ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }
}
