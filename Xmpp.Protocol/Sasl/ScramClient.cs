using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Protocol.Sasl;

/// <summary>The client side of one SCRAM exchange (RFC 5802 §5), used by tests and the load generator.</summary>
/// <remarks>
/// The gs2 channel-binding flag follows RFC 5802 §6: with <c>cbindData</c> the client binds with
/// <c>p=tls-server-end-point</c> and runs the -PLUS mechanism, unless <c>serverSupportsPlus</c> is explicitly
/// false, in which case it sends "y" (able to bind, but the server did not offer it) on the plain mechanism;
/// without <c>cbindData</c> it sends "n". <see cref="Mechanism"/> names the mechanism to put in <c>&lt;auth/&gt;</c>.
/// </remarks>
public sealed class ScramClient
{
    private readonly ScramHash hash;
    private readonly string username;
    private readonly string password;
    private readonly byte[]? cbindData;
    private readonly string gs2Flag;
    private readonly string clientNonce;

    private string clientFirstBare = "";
    private byte[]? serverSignature;

    /// <summary>Prepares an exchange for one account; the password is prepared with <see cref="SaslPrep"/> and a random nonce is made when none is given.</summary>
    /// <exception cref="FormatException">The username or password contains characters SASLprep prohibits, or the nonce is not printable ASCII without commas.</exception>
    public ScramClient(ScramHash hash, string username, string password, byte[]? cbindData = null, bool? serverSupportsPlus = null, string? nonce = null)
    {
        ArgumentNullException.ThrowIfNull(username);
        ArgumentNullException.ThrowIfNull(password);
        this.hash = hash;
        _ = ScramHashes.HashSize(hash);
        // RFC 5802 §5.1: the client SHOULD prepare the username with SASLprep before sending it.
        this.username = SaslPrep.Prepare(username);
        if (this.username.Length == 0)
            throw new FormatException("The username is empty.");
        this.password = SaslPrep.Prepare(password);
        nonce ??= Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        if (!ScramSyntax.IsPrintable(nonce))
            throw new FormatException("The nonce must be printable ASCII without commas.");
        clientNonce = nonce;
        if (cbindData is null)
        {
            gs2Flag = "n";
        }
        else if (serverSupportsPlus == false)
        {
            gs2Flag = "y";
        }
        else
        {
            gs2Flag = "p=" + ScramSyntax.TlsServerEndPoint;
            this.cbindData = cbindData;
        }
    }

    /// <summary>The IANA name of the mechanism this client runs, -PLUS when it binds to the channel.</summary>
    public string Mechanism => ScramHashes.MechanismName(hash, cbindData is not null);

    /// <summary>An authorization identity to request, or null to act as the authenticated user.</summary>
    public string? Authzid { get; init; }

    /// <summary>The lowest iteration count this client accepts from a server; RFC 7677 §4 asks for at least 4096.</summary>
    public int MinimumIterations { get; init; } = ScramCredential.DefaultIterations;

    /// <summary>The server-error-value of a server-final-message carrying <c>e=</c>, or null.</summary>
    public string? ServerError { get; private set; }

    /// <summary>The XEP-0474 value the server sent in its server-first-message (attribute <c>h</c>), for the caller to compare with its own computation; null when absent.</summary>
    public string? DowngradeProtection { get; private set; }

    private string Gs2Header => Authzid is null ? gs2Flag + ",," : $"{gs2Flag},a={ScramSyntax.EncodeSaslName(Authzid)},";

    /// <summary>Builds the client-first-message, gs2 header included.</summary>
    public byte[] ClientFirst()
    {
        clientFirstBare = $"n={ScramSyntax.EncodeSaslName(username)},r={clientNonce}";
        return Encoding.UTF8.GetBytes(Gs2Header + clientFirstBare);
    }

    /// <summary>Checks the server-first-message and builds the client-final-message with the proof.</summary>
    /// <exception cref="FormatException">The server-first-message is malformed, does not extend our nonce, or asks for too few iterations.</exception>
    public byte[] ClientFinal(ReadOnlySpan<byte> serverFirst)
    {
        if (clientFirstBare.Length == 0)
            throw new InvalidOperationException("ClientFirst must be called first.");
        if (!ScramSyntax.TryDecode(serverFirst, out var text))
            throw new FormatException("The server-first-message is not valid UTF-8 text.");

        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
        var span = text.AsSpan();
        var parts = ScramSyntax.SplitCommas(span);
        if (parts.Count > 0 && ScramSyntax.IsAttribute(span[parts[0]], 'm'))
            throw new FormatException("The server requires an extension this client does not support.");
        if (parts.Count < 3 || !ScramSyntax.IsAttribute(span[parts[0]], 'r') || !ScramSyntax.IsAttribute(span[parts[1]], 's')
            || !ScramSyntax.IsAttribute(span[parts[2]], 'i'))
            throw new FormatException("The server-first-message is malformed.");
        var nonce = span[parts[0]][2..];
        if (!ScramSyntax.IsPrintable(nonce) || nonce.Length <= clientNonce.Length || !nonce.StartsWith(clientNonce))
            throw new FormatException("The server nonce does not extend the client nonce.");
        if (!ScramSyntax.TryDecodeBase64(span[parts[1]][2..], out var salt) || salt.Length == 0)
            throw new FormatException("The salt is not valid base64.");
        var iterationText = span[parts[2]][2..];
        if (iterationText.IsEmpty || iterationText.ContainsAnyExceptInRange('0', '9')
            || !int.TryParse(iterationText, out var iterations) || iterations < 1)
            throw new FormatException("The iteration count is not a positive number.");
        if (iterations < MinimumIterations)
            throw new FormatException($"The server asks for {iterations} iterations, fewer than {MinimumIterations}.");

        for (var i = 3; i < parts.Count; i++)
            if (ScramSyntax.IsAttribute(span[parts[i]], ScramDowngradeProtection.AttributeName))
                DowngradeProtection = span[parts[i]][2..].ToString();

        var headerBytes = Encoding.UTF8.GetBytes(Gs2Header);
        var channelBinding = cbindData is null ? headerBytes : [.. headerBytes, .. cbindData];
        var withoutProof = $"c={Convert.ToBase64String(channelBinding)},r={nonce}";
        var authMessage = ScramKeys.AuthMessage(clientFirstBare, text, withoutProof);

        var salted = ScramHashes.SaltedPassword(hash, password, salt, iterations);
        var clientKey = ScramKeys.ClientKey(hash, salted);
        var storedKey = ScramHashes.Hash(hash, clientKey);
        var proof = ScramHashes.Hmac(hash, storedKey, authMessage);
        ScramKeys.Xor(proof, clientKey);
        serverSignature = ScramHashes.Hmac(hash, ScramKeys.ServerKey(hash, salted), authMessage);
        CryptographicOperations.ZeroMemory(salted);
        CryptographicOperations.ZeroMemory(clientKey);
        return Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(proof)}");
    }

    /// <summary>Checks the server's signature in the server-final-message, which proves the server knew the credential.</summary>
    public bool VerifyServerFinal(ReadOnlySpan<byte> serverFinal)
    {
        if (serverSignature is null)
            throw new InvalidOperationException("ClientFinal must be called first.");
        if (!ScramSyntax.TryDecode(serverFinal, out var text))
            return false;
        // server-final-message = (server-error / verifier) ["," extensions]
        var span = text.AsSpan();
        var comma = span.IndexOf(',');
        var first = comma < 0 ? span : span[..comma];
        if (ScramSyntax.IsAttribute(first, 'e'))
        {
            ServerError = first[2..].ToString();
            return false;
        }
        return ScramSyntax.IsAttribute(first, 'v')
            && ScramSyntax.TryDecodeBase64(first[2..], out var signature)
            && CryptographicOperations.FixedTimeEquals(signature, serverSignature);
    }
}
