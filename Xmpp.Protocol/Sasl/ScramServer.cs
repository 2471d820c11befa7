using System.Security.Cryptography;
using System.Text;

namespace Xmpp.Protocol.Sasl;

/// <summary>The server side of one SCRAM exchange (RFC 5802 §5, RFC 7677), with tls-server-end-point channel binding for the -PLUS variants (RFC 5929 §4).</summary>
/// <remarks>
/// Use one instance per authentication attempt: <see cref="ClientFirst"/>, then <see cref="ServerFirst"/>, then
/// <see cref="ClientFinal"/>. Calling them out of order throws <see cref="InvalidOperationException"/>.
/// The username is returned as the client sent it (unescaped); mapping it to a localpart is the caller's job.
/// </remarks>
public sealed class ScramServer
{
    // Per-process key for the fake salts of unknown users: stable while the process runs, so asking twice
    // for the same unknown name gives the same answer, as it would for a real account.
    private static readonly byte[] fakeSaltKey = RandomNumberGenerator.GetBytes(32);

    private readonly ScramHash hash;
    private readonly bool plus;
    private readonly byte[]? cbindData;
    private readonly bool serverOffersPlus;

    private State state = State.ExpectClientFirst;
    private string gs2Header = "";
    private string clientFirstBare = "";
    private string clientNonce = "";
    private string username = "";
    private string serverFirst = "";
    private string nonce = "";
    private ScramCredential? credential;

    /// <summary>Starts an exchange for the mechanism the client chose, given this connection's tls-server-end-point data (null without TLS) and whether -PLUS was advertised.</summary>
    public ScramServer(ScramHash hash, bool plus, byte[]? cbindData, bool serverOffersPlus)
    {
        this.hash = hash;
        this.plus = plus;
        this.cbindData = cbindData;
        this.serverOffersPlus = serverOffersPlus;
        _ = ScramHashes.HashSize(hash);
    }

    private enum State { ExpectClientFirst, ExpectServerFirst, ExpectClientFinal, Done }

    /// <summary>The IANA name of the mechanism this exchange runs.</summary>
    public string Mechanism => ScramHashes.MechanismName(hash, plus);

    /// <summary>The iteration count announced for unknown users, which should match what real accounts use so the two cannot be told apart.</summary>
    public int UnknownUserIterations { get; init; } = ScramCredential.DefaultIterations;

    /// <summary>The RFC 5802 §7 server-error-value that explains the last failure (for logs or the failure's text), or null.</summary>
    public string? FailureDetail { get; private set; }

    /// <summary>True when the exchange failed at the proof check (a wrong password or an unknown user), the only failure that tells a guesser anything; false for protocol-level failures such as an unsupported channel-binding type, a malformed message or mismatched channel-binding data, which are decided before the proof is looked at.</summary>
    public bool CredentialsRejected { get; private set; }

    /// <summary>The XEP-0474 downgrade-protection value to send as the attribute <c>h</c> of the server-first-message, or null to send none.</summary>
    public string? DowngradeProtection { get; init; }

    // Tests pin the server nonce to reproduce the RFC examples.
    internal string? FixedServerNonce { get; init; }

    /// <summary>Parses the client-first-message (gs2 header and bare message) and applies the channel-binding rules of RFC 5802 §6.</summary>
    public SaslOutcome ClientFirst(ReadOnlySpan<byte> message, out string? username, out string? authzid, out string? failure)
    {
        if (state != State.ExpectClientFirst)
            throw new InvalidOperationException("ClientFirst was already called.");
        username = null;
        authzid = null;
        failure = ParseClientFirst(message, out var parsedAuthzid);
        if (failure is not null)
        {
            state = State.Done;
            return SaslOutcome.Failure;
        }
        username = this.username;
        authzid = parsedAuthzid;
        state = State.ExpectServerFirst;
        return SaslOutcome.Continue;
    }

    /// <summary>Builds the server-first-message from the account's credential, or from a deterministic fake one when the account does not exist so that the exchange only fails at <see cref="ClientFinal"/>.</summary>
    /// <exception cref="ArgumentException">The credential is for another hash than this mechanism.</exception>
    public byte[] ServerFirst(ScramCredential? credential)
    {
        if (state != State.ExpectServerFirst)
            throw new InvalidOperationException("ServerFirst needs a successful ClientFirst first.");
        if (credential is not null && credential.Hash != hash)
            throw new ArgumentException($"The credential is for {credential.Hash}, the mechanism is {Mechanism}.", nameof(credential));
        this.credential = credential;
        var salt = credential?.Salt ?? FakeSalt();
        var iterations = credential?.Iterations ?? UnknownUserIterations;
        nonce = clientNonce + (FixedServerNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)));
        serverFirst = $"r={nonce},s={Convert.ToBase64String(salt)},i={iterations}";
        // RFC 5802 §7 allows extensions after the iteration count; XEP-0474 puts its hash there, covered by the proof.
        if (DowngradeProtection is not null) serverFirst += $",{ScramDowngradeProtection.AttributeName}={DowngradeProtection}";
        state = State.ExpectClientFinal;
        return Encoding.UTF8.GetBytes(serverFirst);
    }

    /// <summary>Checks the client-final-message (channel binding, nonce, proof) and on success returns the server-final-message to send with <c>&lt;success/&gt;</c>.</summary>
    public SaslOutcome ClientFinal(ReadOnlySpan<byte> message, out byte[]? serverFinal, out string? failure)
    {
        if (state != State.ExpectClientFinal)
            throw new InvalidOperationException("ClientFinal needs ServerFirst first.");
        state = State.Done;
        serverFinal = null;
        failure = VerifyClientFinal(message, out var signature);
        if (failure is not null)
            return SaslOutcome.Failure;
        serverFinal = Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(signature!));
        return SaslOutcome.Success;
    }

    private string? ParseClientFirst(ReadOnlySpan<byte> message, out string? authzid)
    {
        authzid = null;
        if (!ScramSyntax.TryDecode(message, out var text))
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");

        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        var span = text.AsSpan();
        var firstComma = span.IndexOf(',');
        if (firstComma < 0)
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        var flag = span[..firstComma];
        string? cbName = null;
        if (flag.StartsWith("p="))
        {
            if (!ScramSyntax.IsCbName(flag[2..]))
                return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
            cbName = flag[2..].ToString();
        }
        else if (!flag.SequenceEqual("n") && !flag.SequenceEqual("y"))
        {
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        }

        var rest = span[(firstComma + 1)..];
        var secondComma = rest.IndexOf(',');
        if (secondComma < 0)
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        var authzPart = rest[..secondComma];
        if (!authzPart.IsEmpty)
        {
            if (!ScramSyntax.IsAttribute(authzPart, 'a'))
                return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
            if (!ScramSyntax.TryDecodeSaslName(authzPart[2..], out var decoded))
                return Fail(SaslFailures.InvalidAuthzid, "invalid-encoding");
            authzid = decoded;
        }
        var headerLength = firstComma + 1 + secondComma + 1;
        gs2Header = text[..headerLength];
        clientFirstBare = text[headerLength..];

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        var bare = clientFirstBare.AsSpan();
        var parts = ScramSyntax.SplitCommas(bare);
        if (parts.Count > 0 && ScramSyntax.IsAttribute(bare[parts[0]], 'm'))
            return Fail(SaslFailures.MalformedRequest, "extensions-not-supported");
        if (parts.Count < 2 || !ScramSyntax.IsAttribute(bare[parts[0]], 'n') || !ScramSyntax.IsAttribute(bare[parts[1]], 'r'))
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        if (!ScramSyntax.TryDecodeSaslName(bare[parts[0]][2..], out var user))
            return Fail(SaslFailures.MalformedRequest, "invalid-username-encoding");
        var clientNonceSpan = bare[parts[1]][2..];
        if (!ScramSyntax.IsPrintable(clientNonceSpan))
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        for (var i = 2; i < parts.Count; i++)
        {
            // Optional extensions are ignored, but they must at least be attributes.
            if (!ScramSyntax.IsAnyAttribute(bare[parts[i]]))
                return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        }
        username = user;
        clientNonce = clientNonceSpan.ToString();

        // RFC 5802 §6: the gs2 flag must agree with the mechanism and with what this server offered.
        if (cbName is not null)
        {
            if (!plus)
                return Fail(SaslFailures.MalformedRequest, "channel-binding-not-supported");
            // RFC 5802 §6: a type the server does not support MUST fail the exchange. RFC 6120 §6.5 has no condition
            // for it, so the failure is malformed-request and the RFC 5802 §7 value goes into its text. tls-unique in
            // particular is undefined under TLS 1.3 (RFC 8446 appendix C.5, RFC 9266 §1), so it is never accepted.
            if (cbName != ScramSyntax.TlsServerEndPoint)
                return Fail(SaslFailures.MalformedRequest, "unsupported-channel-binding-type");
            if (cbindData is null)
                return Fail(SaslFailures.EncryptionRequired, "channel-binding-not-supported");
        }
        else if (plus)
        {
            // A -PLUS mechanism without "p=" is a contradiction (RFC 5802 §5.1, gs2-cbind-flag).
            return Fail(SaslFailures.MalformedRequest, "channel-binding-not-supported");
        }
        else if (flag.SequenceEqual("y") && serverOffersPlus)
        {
            // "y" says the client could bind but thought we could not: we did offer -PLUS, so
            // someone removed it from our features on the way (RFC 5802 §6, downgrade protection).
            return Fail(SaslFailures.NotAuthorized, "server-does-support-channel-binding");
        }
        return null;
    }

    private string? VerifyClientFinal(ReadOnlySpan<byte> message, out byte[]? serverSignature)
    {
        serverSignature = null;
        if (!ScramSyntax.TryDecode(message, out var text))
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");

        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        var proofAt = text.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0)
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        var withoutProof = text[..proofAt];
        var parts = ScramSyntax.SplitCommas(withoutProof);
        var span = withoutProof.AsSpan();
        if (parts.Count < 2 || !ScramSyntax.IsAttribute(span[parts[0]], 'c') || !ScramSyntax.IsAttribute(span[parts[1]], 'r'))
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");
        for (var i = 2; i < parts.Count; i++)
        {
            if (!ScramSyntax.IsAnyAttribute(span[parts[i]]) || ScramSyntax.IsAttribute(span[parts[i]], 'm'))
                return Fail(SaslFailures.MalformedRequest, "extensions-not-supported");
        }
        if (!ScramSyntax.TryDecodeBase64(span[parts[0]][2..], out var channelBinding)
            || !ScramSyntax.TryDecodeBase64(text.AsSpan(proofAt + 3), out var proof)
            || proof.Length != ScramHashes.HashSize(hash))
            return Fail(SaslFailures.MalformedRequest, "invalid-encoding");

        // RFC 5802 §6: c= carries the gs2 header again, followed by the channel binding data for "p=".
        var headerBytes = Encoding.UTF8.GetBytes(gs2Header);
        var expected = plus ? [.. headerBytes, .. cbindData!] : headerBytes;
        if (!CryptographicOperations.FixedTimeEquals(channelBinding, expected))
            return Fail(SaslFailures.NotAuthorized, "channel-bindings-dont-match");
        if (!span[parts[1]][2..].SequenceEqual(nonce))
            return Fail(SaslFailures.NotAuthorized, "other-error");

        // Unknown users go through the same computation with throw-away keys, so timing tells nothing.
        var storedKey = credential?.StoredKey ?? new byte[ScramHashes.HashSize(hash)];
        var serverKey = credential?.ServerKey ?? storedKey;
        var authMessage = ScramKeys.AuthMessage(clientFirstBare, serverFirst, withoutProof);
        var clientKey = ScramHashes.Hmac(hash, storedKey, authMessage);
        ScramKeys.Xor(clientKey, proof);
        var proofMatches = CryptographicOperations.FixedTimeEquals(ScramHashes.Hash(hash, clientKey), storedKey);
        CryptographicOperations.ZeroMemory(clientKey);
        if (credential is null || !proofMatches)
        {
            CredentialsRejected = true;
            return Fail(SaslFailures.NotAuthorized, credential is null ? "unknown-user" : "invalid-proof");
        }
        serverSignature = ScramHashes.Hmac(hash, serverKey, authMessage);
        return null;
    }

    private byte[] FakeSalt()
    {
        // Keyed by hash only: -PLUS and plain variants must show the same salt, as they do for real accounts.
        var input = Encoding.UTF8.GetBytes(ScramHashes.MechanismName(hash, false) + "\0" + username);
        return HMACSHA256.HashData(fakeSaltKey, input)[..ScramCredential.DefaultSaltLength];
    }

    private string Fail(string condition, string detail)
    {
        FailureDetail = detail;
        return condition;
    }
}
