using Xmpp.Protocol.Sasl;

namespace Xmpp.Fuzz;

/// The server side of SCRAM (Xmpp.Protocol/Sasl/ScramServer.cs): client-first and client-final messages of any shape
/// end in a SaslOutcome, never an exception; success needs the right proof.
/// Input: one flags byte (hash, -PLUS, channel-binding data present, -PLUS offered), then the client-first-message,
/// a line feed, and the client-final-message.
public static class ScramHarness
{
    // The RFC 5802 §5 and RFC 7677 §3 examples (user "user", password "pencil"), so that seeds can complete an exchange.
    private static readonly (ScramCredential Credential, string ServerNonce)[] Vectors =
    [
        (ScramCredential.Derive("pencil", ScramHash.Sha1, 4096, Convert.FromBase64String("QSXCR+Q6sek8bf92")), "3rfcNHYJY1ZVvWVs7j"),
        (ScramCredential.Derive("pencil", ScramHash.Sha256, 4096, Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==")), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"),
        (ScramCredential.Derive("pencil", ScramHash.Sha512, 4096, Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==")), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"),
    ];

    private static readonly byte[] CbindData = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    public static void Run(byte[] data)
    {
        if (data.Length == 0) return;
        FuzzAssert.WithinAllocationBound(data.Length, () => { Exchange(data); return 0; });
    }

    private static void Exchange(byte[] data)
    {
        byte flags = data[0];
        var (credential, serverNonce) = Vectors[flags % 3];
        bool plus = (flags & 0x04) != 0;
        byte[]? cbind = (flags & 0x08) != 0 ? CbindData : null;
        bool offersPlus = (flags & 0x10) != 0;
        bool knownUser = (flags & 0x20) == 0;
        var rest = data.AsSpan(1);
        int lf = rest.IndexOf((byte)'\n');
        var first = lf < 0 ? rest : rest[..lf];
        var final = lf < 0 ? [] : rest[(lf + 1)..];

        var server = new ScramServer(credential.Hash, plus, cbind, offersPlus) { FixedServerNonce = serverNonce, UnknownUserIterations = 1 };
        var outcome = server.ClientFirst(first, out var username, out _, out var failure);
        FuzzAssert.True(outcome is SaslOutcome.Continue or SaslOutcome.Failure, $"client-first gave {outcome}");
        FuzzAssert.True((outcome == SaslOutcome.Failure) == (failure is not null), "a failure needs a condition, a continuation none");
        if (outcome == SaslOutcome.Failure)
        {
            FuzzAssert.True(!server.CredentialsRejected, "client-first cannot reject credentials");
            return;
        }
        FuzzAssert.True(username is not null, "client-first accepted without a username");
        var serverFirst = server.ServerFirst(knownUser ? credential : null);
        FuzzAssert.True(serverFirst.Length > 0, "empty server-first-message");

        outcome = server.ClientFinal(final, out var serverFinal, out failure);
        FuzzAssert.True((outcome == SaslOutcome.Success) == (serverFinal is not null), "success comes with a server-final-message, and only success");
        FuzzAssert.True(outcome != SaslOutcome.Success || knownUser, "an unknown user authenticated");
        FuzzAssert.True(outcome != SaslOutcome.Failure || failure is not null, "a failure needs a condition");
    }
}
