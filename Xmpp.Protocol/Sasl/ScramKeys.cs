using System.Text;

namespace Xmpp.Protocol.Sasl;

// RFC 5802 §3: the keys both sides derive from the salted password.
internal static class ScramKeys
{
    private static readonly byte[] clientKeyLabel = "Client Key"u8.ToArray();
    private static readonly byte[] serverKeyLabel = "Server Key"u8.ToArray();

    public static byte[] ClientKey(ScramHash h, ReadOnlySpan<byte> saltedPassword) => ScramHashes.Hmac(h, saltedPassword, clientKeyLabel);

    public static byte[] ServerKey(ScramHash h, ReadOnlySpan<byte> saltedPassword) => ScramHashes.Hmac(h, saltedPassword, serverKeyLabel);

    public static byte[] StoredKey(ScramHash h, ReadOnlySpan<byte> saltedPassword) => ScramHashes.Hash(h, ClientKey(h, saltedPassword));

    // AuthMessage := client-first-message-bare + "," + server-first-message + "," + client-final-message-without-proof
    public static byte[] AuthMessage(string clientFirstBare, string serverFirst, string clientFinalWithoutProof) =>
        Encoding.UTF8.GetBytes(string.Concat(clientFirstBare, ",", serverFirst, ",", clientFinalWithoutProof));

    public static void Xor(Span<byte> target, ReadOnlySpan<byte> other)
    {
        for (var i = 0; i < target.Length; i++)
            target[i] ^= other[i];
    }
}
