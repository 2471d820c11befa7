using System.Text;

namespace Xmpp.Protocol.Sasl;

/// <summary>Parses the single message of the PLAIN mechanism (RFC 4616 §2): <c>[authzid] NUL authcid NUL passwd</c>.</summary>
public static class PlainMechanism
{
    /// <summary>The mechanism name as advertised.</summary>
    public const string Name = "PLAIN";

    // RFC 4616 §2 only requires accepting 255 octets per field; the cap keeps abuse out.
    private const int MaxMessageBytes = 4096;

    private static readonly UTF8Encoding strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Splits a PLAIN message into its fields, failing on missing or extra NULs, empty username or password, or invalid UTF-8; an empty authzid comes back as null.</summary>
    public static bool TryParse(ReadOnlySpan<byte> message, out string? authzid, out string username, out string password)
    {
        authzid = null;
        username = "";
        password = "";
        if (message.Length == 0 || message.Length > MaxMessageBytes)
            return false;
        var first = message.IndexOf((byte)0);
        if (first < 0)
            return false;
        var afterFirst = message[(first + 1)..];
        var second = afterFirst.IndexOf((byte)0);
        if (second < 0)
            return false;
        var authzBytes = message[..first];
        var userBytes = afterFirst[..second];
        var passwordBytes = afterFirst[(second + 1)..];
        // Exactly two NULs: a third one would sit inside the password, which RFC 4616 forbids.
        if (userBytes.IsEmpty || passwordBytes.IsEmpty || passwordBytes.IndexOf((byte)0) >= 0)
            return false;
        try
        {
            authzid = authzBytes.IsEmpty ? null : strictUtf8.GetString(authzBytes);
            username = strictUtf8.GetString(userBytes);
            password = strictUtf8.GetString(passwordBytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            authzid = null;
            username = "";
            password = "";
            return false;
        }
    }

    /// <summary>Builds a PLAIN message, as a client sends it.</summary>
    public static byte[] Build(string? authzid, string username, string password) =>
        Encoding.UTF8.GetBytes($"{authzid}\0{username}\0{password}");
}
