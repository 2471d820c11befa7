// The HT family of SASL mechanisms (draft-schmaus-kitten-sasl-ht-08, as profiled by XEP-0484) with SHA-256.
using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Protocol.Sasl;

/// <summary>The channel binding an HT mechanism uses: none, tls-server-end-point (ENDP) or tls-unique (UNIQ).</summary>
public enum HashedTokenBinding
{
    None,
    EndPoint,
    Unique,
}

/// <summary>Message syntax and proofs of the HT-SHA-256-* mechanisms: one client message <c>authcid NUL initiator-hashed-token</c>, answered by the responder-hashed-token.</summary>
public static class HashedToken
{
    /// <summary>The mechanism without channel binding.</summary>
    public const string Sha256None = "HT-SHA-256-NONE";

    /// <summary>The mechanism bound to tls-server-end-point (RFC 5929 §4).</summary>
    public const string Sha256EndPoint = "HT-SHA-256-ENDP";

    /// <summary>The mechanism bound to tls-unique (RFC 5929 §3).</summary>
    public const string Sha256Unique = "HT-SHA-256-UNIQ";

    private static readonly byte[] initiatorLabel = "Initiator"u8.ToArray();
    private static readonly byte[] responderLabel = "Responder"u8.ToArray();
    private static readonly UTF8Encoding strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Recognises an HT-SHA-256 mechanism name and says which channel binding it needs.</summary>
    public static bool TryParseMechanism(string name, out HashedTokenBinding binding)
    {
        binding = name switch
        {
            Sha256None => HashedTokenBinding.None,
            Sha256EndPoint => HashedTokenBinding.EndPoint,
            Sha256Unique => HashedTokenBinding.Unique,
            _ => (HashedTokenBinding)(-1),
        };
        return (int)binding >= 0;
    }

    /// <summary>Splits the client's message into the authentication identity and the 32-byte initiator hash.</summary>
    public static bool TryParseInitial(ReadOnlySpan<byte> message, out string username, out byte[] initiatorHash)
    {
        username = "";
        initiatorHash = [];
        var nul = message.IndexOf((byte)0);
        if (nul <= 0 || message.Length - nul - 1 != SHA256.HashSizeInBytes) return false;
        try { username = strictUtf8.GetString(message[..nul]); }
        catch (DecoderFallbackException) { return false; }
        initiatorHash = message[(nul + 1)..].ToArray();
        return true;
    }

    /// <summary>HMAC(token, "Initiator" || cb-data): what the client proves possession of the token with.</summary>
    public static byte[] Initiator(ReadOnlySpan<byte> token, ReadOnlySpan<byte> channelBinding) => Mac(token, initiatorLabel, channelBinding);

    /// <summary>HMAC(token, "Responder" || cb-data): what the server returns as additional data so the client knows it holds the token too.</summary>
    public static byte[] Responder(ReadOnlySpan<byte> token, ReadOnlySpan<byte> channelBinding) => Mac(token, responderLabel, channelBinding);

    /// <summary>Builds the client message, as a client sends it.</summary>
    public static byte[] BuildInitial(string username, ReadOnlySpan<byte> token, ReadOnlySpan<byte> channelBinding) =>
        [.. Encoding.UTF8.GetBytes(username), 0, .. Initiator(token, channelBinding)];

    private static byte[] Mac(ReadOnlySpan<byte> token, byte[] label, ReadOnlySpan<byte> channelBinding)
    {
        var data = new byte[label.Length + channelBinding.Length];
        label.CopyTo(data, 0);
        channelBinding.CopyTo(data.AsSpan(label.Length));
        return HMACSHA256.HashData(token, data);
    }
}
