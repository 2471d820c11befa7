using System.Security.Cryptography;

namespace Xmpp.Protocol.Sasl;

/// <summary>What a server stores for one account and one SCRAM hash (RFC 5802 §3): salt, iteration count, StoredKey and ServerKey, never the password.</summary>
public sealed record ScramCredential(ScramHash Hash, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    /// <summary>The iteration count used when none is given; RFC 7677 §4 asks for at least 4096.</summary>
    public const int DefaultIterations = 4096;

    /// <summary>The salt length in bytes used when no salt is given.</summary>
    public const int DefaultSaltLength = 16;

    /// <summary>Derives the stored keys from a password prepared with <see cref="SaslPrep"/>, using a fresh random salt when none is given.</summary>
    /// <exception cref="FormatException">The password contains characters SASLprep prohibits.</exception>
    /// <exception cref="ArgumentException">The prepared password is empty or the salt is empty.</exception>
    public static ScramCredential Derive(string password, ScramHash hash, int iterations = DefaultIterations, byte[]? salt = null)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        if (salt is { Length: 0 })
            throw new ArgumentException("The salt must not be empty.", nameof(salt));
        var prepared = SaslPrep.Prepare(password);
        if (prepared.Length == 0)
            throw new ArgumentException("The password is empty after SASLprep.", nameof(password));
        salt ??= RandomNumberGenerator.GetBytes(DefaultSaltLength);
        var salted = ScramHashes.SaltedPassword(hash, prepared, salt, iterations);
        try
        {
            return new ScramCredential(hash, salt, iterations, ScramKeys.StoredKey(hash, salted), ScramKeys.ServerKey(hash, salted));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(salted);
        }
    }

    /// <summary>Checks a clear-text password (as received by PLAIN) against this credential in fixed time.</summary>
    public bool VerifyPassword(string password)
    {
        if (password is null || Salt is not { Length: > 0 } || Iterations < 1 || StoredKey is null)
            return false;
        string prepared;
        try
        {
            prepared = SaslPrep.Prepare(password);
        }
        catch (FormatException)
        {
            return false;
        }
        if (prepared.Length == 0)
            return false;
        var salted = ScramHashes.SaltedPassword(Hash, prepared, Salt, Iterations);
        try
        {
            return CryptographicOperations.FixedTimeEquals(ScramKeys.StoredKey(Hash, salted), StoredKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(salted);
        }
    }
}
