using System.Security.Cryptography;

namespace Xmpp.Protocol.Sasl;

/// <summary>Mechanism names and primitive operations (H, HMAC, Hi) for each <see cref="ScramHash"/>.</summary>
public static class ScramHashes
{
    private static readonly ScramHash[] all = [ScramHash.Sha512, ScramHash.Sha256, ScramHash.Sha1];

    /// <summary>Every supported hash, strongest first, which is the order a server advertises them in.</summary>
    public static IReadOnlyList<ScramHash> All { get; } = Array.AsReadOnly(all);

    /// <summary>Returns the IANA SASL mechanism name, for example <c>SCRAM-SHA-256-PLUS</c>.</summary>
    public static string MechanismName(ScramHash h, bool plus) => (h, plus) switch
    {
        (ScramHash.Sha1, false) => "SCRAM-SHA-1",
        (ScramHash.Sha1, true) => "SCRAM-SHA-1-PLUS",
        (ScramHash.Sha256, false) => "SCRAM-SHA-256",
        (ScramHash.Sha256, true) => "SCRAM-SHA-256-PLUS",
        (ScramHash.Sha512, false) => "SCRAM-SHA-512",
        (ScramHash.Sha512, true) => "SCRAM-SHA-512-PLUS",
        _ => throw new ArgumentOutOfRangeException(nameof(h)),
    };

    /// <summary>Recognises a SCRAM mechanism name exactly as registered (SASL mechanism names are upper case).</summary>
    public static bool TryParseMechanism(string name, out ScramHash h, out bool plus)
    {
        foreach (var candidate in all)
        {
            if (name == MechanismName(candidate, false)) { h = candidate; plus = false; return true; }
            if (name == MechanismName(candidate, true)) { h = candidate; plus = true; return true; }
        }
        h = default;
        plus = false;
        return false;
    }

    /// <summary>Returns the output length of the hash in bytes, which is also the length of every SCRAM key and proof.</summary>
    public static int HashSize(ScramHash h) => h switch
    {
        ScramHash.Sha1 => SHA1.HashSizeInBytes,
        ScramHash.Sha256 => SHA256.HashSizeInBytes,
        ScramHash.Sha512 => SHA512.HashSizeInBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(h)),
    };

    /// <summary>Returns the BCL name of the hash, as PBKDF2 and HMAC APIs expect it.</summary>
    public static HashAlgorithmName AlgorithmName(ScramHash h) => h switch
    {
        ScramHash.Sha1 => HashAlgorithmName.SHA1,
        ScramHash.Sha256 => HashAlgorithmName.SHA256,
        ScramHash.Sha512 => HashAlgorithmName.SHA512,
        _ => throw new ArgumentOutOfRangeException(nameof(h)),
    };

    internal static byte[] Hash(ScramHash h, ReadOnlySpan<byte> data) => h switch
    {
        ScramHash.Sha1 => SHA1.HashData(data),
        ScramHash.Sha256 => SHA256.HashData(data),
        ScramHash.Sha512 => SHA512.HashData(data),
        _ => throw new ArgumentOutOfRangeException(nameof(h)),
    };

    internal static byte[] Hmac(ScramHash h, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) => h switch
    {
        ScramHash.Sha1 => HMACSHA1.HashData(key, data),
        ScramHash.Sha256 => HMACSHA256.HashData(key, data),
        ScramHash.Sha512 => HMACSHA512.HashData(key, data),
        _ => throw new ArgumentOutOfRangeException(nameof(h)),
    };

    // RFC 5802 §2.2: Hi(str, salt, i) is PBKDF2 with HMAC as the PRF and one hash-sized block.
    internal static byte[] SaltedPassword(ScramHash h, string preparedPassword, ReadOnlySpan<byte> salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(preparedPassword, salt, iterations, AlgorithmName(h), HashSize(h));
}
