namespace Xmpp.Storage;

// RFC 5802 §3 salted credentials for one hash ("SHA-1", "SHA-256", "SHA-512"); the password itself is never stored.
public sealed record ScramKeys(string Hash, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey);
