using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Xmpp.Protocol.Sasl;

namespace Xmpp.Tests.Protocol;

public class ScramTests
{
    private const string ProofPlaceholder = "{proof}";
    private const string NoncePlaceholder = "{nonce}";

    // RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256): user "user", password "pencil".
    private static readonly object[] rfcVectors =
    [
        new object[]
        {
            ScramHash.Sha1, "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        },
        new object[]
        {
            ScramHash.Sha256, "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "W22ZaJ0SNY7soEsUEjb6gQ==",
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        },
    ];

    [TestCaseSource(nameof(rfcVectors))]
    public void Client_reproduces_the_rfc_example_exactly(ScramHash hash, string clientNonce, string serverNonce, string salt,
        string clientFirst, string serverFirst, string clientFinal, string serverFinal)
    {
        var client = new ScramClient(hash, "user", "pencil", nonce: clientNonce);

        Assert.That(Text(client.ClientFirst()), Is.EqualTo(clientFirst));
        Assert.That(Text(client.ClientFinal(Bytes(serverFirst))), Is.EqualTo(clientFinal));
        Assert.That(client.VerifyServerFinal(Bytes(serverFinal)), Is.True);
    }

    [TestCaseSource(nameof(rfcVectors))]
    public void Server_reproduces_the_rfc_example_exactly(ScramHash hash, string clientNonce, string serverNonce, string salt,
        string clientFirst, string serverFirst, string clientFinal, string serverFinal)
    {
        var credential = ScramCredential.Derive("pencil", hash, 4096, Convert.FromBase64String(salt));
        var server = new ScramServer(hash, plus: false, cbindData: null, serverOffersPlus: false) { FixedServerNonce = serverNonce };

        Assert.That(server.ClientFirst(Bytes(clientFirst), out var username, out var authzid, out var failure), Is.EqualTo(SaslOutcome.Continue));
        Assert.That((username, authzid, failure), Is.EqualTo(("user", (string?)null, (string?)null)));
        Assert.That(Text(server.ServerFirst(credential)), Is.EqualTo(serverFirst));
        Assert.That(server.ClientFinal(Bytes(clientFinal), out var final, out failure), Is.EqualTo(SaslOutcome.Success));
        Assert.That(failure, Is.Null);
        Assert.That(Text(final!), Is.EqualTo(serverFinal));
    }

    [TestCase(ScramHash.Sha1, false)]
    [TestCase(ScramHash.Sha1, true)]
    [TestCase(ScramHash.Sha256, false)]
    [TestCase(ScramHash.Sha256, true)]
    [TestCase(ScramHash.Sha512, false)]
    [TestCase(ScramHash.Sha512, true)]
    public void Client_and_server_complete_a_round_trip(ScramHash hash, bool plus)
    {
        var cbind = plus ? RandomNumberGenerator.GetBytes(32) : null;
        var credential = ScramCredential.Derive("pencil", hash);
        var client = new ScramClient(hash, "user", "pencil", cbind, serverSupportsPlus: plus);
        var server = new ScramServer(hash, plus, cbind, serverOffersPlus: plus);

        Assert.That(client.Mechanism, Is.EqualTo(ScramHashes.MechanismName(hash, plus)));
        var outcome = Run(client, server, credential, out var failure, out var serverFinal);

        Assert.That(outcome, Is.EqualTo(SaslOutcome.Success), server.FailureDetail);
        Assert.That(failure, Is.Null);
        Assert.That(client.VerifyServerFinal(serverFinal!), Is.True);
    }

    [Test]
    public void Client_with_channel_binding_data_uses_plus_by_default()
    {
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil", [1, 2, 3]);

        Assert.That(client.Mechanism, Is.EqualTo("SCRAM-SHA-256-PLUS"));
        Assert.That(Text(client.ClientFirst()), Does.StartWith("p=tls-server-end-point,,n=user,r="));
    }

    [Test]
    public void Round_trip_carries_an_escaped_username_and_authzid()
    {
        var credential = ScramCredential.Derive("pencil", ScramHash.Sha256);
        var client = new ScramClient(ScramHash.Sha256, "a,b=c", "pencil") { Authzid = "juliet@example.com/x,y" };
        var server = new ScramServer(ScramHash.Sha256, false, null, false);

        var first = client.ClientFirst();
        Assert.That(Text(first), Does.StartWith("n,a=juliet@example.com/x=2Cy,n=a=2Cb=3Dc,r="));
        Assert.That(server.ClientFirst(first, out var username, out var authzid, out _), Is.EqualTo(SaslOutcome.Continue));
        Assert.That(username, Is.EqualTo("a,b=c"));
        Assert.That(authzid, Is.EqualTo("juliet@example.com/x,y"));
        var final = client.ClientFinal(server.ServerFirst(credential));
        Assert.That(server.ClientFinal(final, out _, out _), Is.EqualTo(SaslOutcome.Success));
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    [TestCase(ScramHash.Sha512)]
    public void Wrong_password_is_not_authorized(ScramHash hash)
    {
        var credential = ScramCredential.Derive("pencil", hash);
        var client = new ScramClient(hash, "user", "crayon");
        var server = new ScramServer(hash, false, null, false);

        Assert.That(Run(client, server, credential, out var failure, out var serverFinal), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That(server.FailureDetail, Is.EqualTo("invalid-proof"));
        Assert.That(server.CredentialsRejected, Is.True, "a wrong password is what the login back-off counts");
        Assert.That(serverFinal, Is.Null);
    }

    [Test]
    public void Unknown_user_gets_a_plausible_challenge_and_fails_only_at_the_final_message()
    {
        var client = new ScramClient(ScramHash.Sha256, "nobody", "pencil");
        var server = new ScramServer(ScramHash.Sha256, false, null, false);

        server.ClientFirst(client.ClientFirst(), out _, out _, out _);
        var serverFirst = server.ServerFirst(null);
        Assert.That(Text(serverFirst), Does.Match("^r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$"));
        Assert.That(server.ClientFinal(client.ClientFinal(serverFirst), out var serverFinal, out var failure), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That(server.CredentialsRejected, Is.True, "guessing user names counts like guessing passwords");
        Assert.That(serverFinal, Is.Null);
    }

    [Test]
    public void Unknown_user_sees_the_same_salt_every_time_and_for_the_plus_variant()
    {
        string Salt(string user, bool plus)
        {
            var server = new ScramServer(ScramHash.Sha256, plus, plus ? [9] : null, plus);
            var client = new ScramClient(ScramHash.Sha256, user, "x", plus ? [9] : null);
            server.ClientFirst(client.ClientFirst(), out _, out _, out _);
            return Text(server.ServerFirst(null)).Split(',')[1];
        }

        Assert.That(Salt("nobody", false), Is.EqualTo(Salt("nobody", false)));
        Assert.That(Salt("nobody", true), Is.EqualTo(Salt("nobody", false)));
        Assert.That(Salt("somebody", false), Is.Not.EqualTo(Salt("nobody", false)));
    }

    [Test]
    public void Client_flag_y_is_rejected_as_a_downgrade_when_the_server_offers_plus()
    {
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil", [1, 2, 3], serverSupportsPlus: false);
        var server = new ScramServer(ScramHash.Sha256, plus: false, cbindData: [1, 2, 3], serverOffersPlus: true);

        var first = client.ClientFirst();
        Assert.That(Text(first), Does.StartWith("y,,"));
        Assert.That(client.Mechanism, Is.EqualTo("SCRAM-SHA-256"));
        Assert.That(server.ClientFirst(first, out _, out _, out var failure), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That(server.FailureDetail, Is.EqualTo("server-does-support-channel-binding"));
    }

    [Test]
    public void Client_flag_y_is_accepted_when_the_server_does_not_offer_plus()
    {
        var credential = ScramCredential.Derive("pencil", ScramHash.Sha256);
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil", [1, 2, 3], serverSupportsPlus: false);
        var server = new ScramServer(ScramHash.Sha256, plus: false, cbindData: null, serverOffersPlus: false);

        Assert.That(Run(client, server, credential, out _, out var serverFinal), Is.EqualTo(SaslOutcome.Success));
        Assert.That(client.VerifyServerFinal(serverFinal!), Is.True);
    }

    [Test]
    public void Mismatched_channel_binding_data_is_not_authorized()
    {
        var credential = ScramCredential.Derive("pencil", ScramHash.Sha512);
        var client = new ScramClient(ScramHash.Sha512, "user", "pencil", RandomNumberGenerator.GetBytes(32), serverSupportsPlus: true);
        var server = new ScramServer(ScramHash.Sha512, plus: true, RandomNumberGenerator.GetBytes(32), serverOffersPlus: true);

        Assert.That(Run(client, server, credential, out var failure, out _), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(SaslFailures.NotAuthorized));
        Assert.That(server.FailureDetail, Is.EqualTo("channel-bindings-dont-match"));
        Assert.That(server.CredentialsRejected, Is.False, "decided before the proof is looked at, so it tells a guesser nothing");
    }

    // RFC 5802 §6: "If the channel binding flag was 'p' and the server does not support the indicated channel binding
    // type, then the server MUST fail authentication"; §7 names the error. slixmpp 1.8.3 sends tls-unique under
    // TLS 1.3, where it is undefined (RFC 8446 appendix C.5); .NET exposes no tls-exporter (RFC 9266).
    [TestCase("tls-unique", ScramHash.Sha1)]
    [TestCase("tls-unique", ScramHash.Sha256)]
    [TestCase("tls-exporter", ScramHash.Sha512)]
    [TestCase("tls-unique-for-telnet", ScramHash.Sha256)]
    public void An_unsupported_channel_binding_type_fails_at_the_first_message_as_a_protocol_error(string type, ScramHash hash)
    {
        var server = new ScramServer(hash, plus: true, cbindData: [1, 2, 3], serverOffersPlus: true);

        var outcome = server.ClientFirst(Bytes($"p={type},,n=user,r=fyko+d2lbbFgONRv9qkxdawL"), out var user, out _, out var failure);

        Assert.Multiple(() =>
        {
            Assert.That(outcome, Is.EqualTo(SaslOutcome.Failure));
            Assert.That(failure, Is.EqualTo(SaslFailures.MalformedRequest));
            Assert.That(server.FailureDetail, Is.EqualTo("unsupported-channel-binding-type"));
            Assert.That(server.CredentialsRejected, Is.False);
            Assert.That(user, Is.Null, "no user is looked up, so nothing is learned about the account");
        });
        Assert.Throws<InvalidOperationException>(() => server.ServerFirst(null), "the exchange is over");
    }

    [Test]
    public void A_malformed_client_final_message_is_a_protocol_error_not_a_rejected_password()
    {
        var credential = ScramCredential.Derive("pencil", ScramHash.Sha256);
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil");
        var server = new ScramServer(ScramHash.Sha256, false, null, false);
        server.ClientFirst(client.ClientFirst(), out _, out _, out _);
        server.ServerFirst(credential);

        Assert.That(server.ClientFinal(Bytes("c=biws,r=nonce-without-proof"), out _, out var failure), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(SaslFailures.MalformedRequest));
        Assert.That(server.CredentialsRejected, Is.False);
    }

    [TestCase(false, true, "p=tls-server-end-point,,n=user,r=abc", SaslFailures.MalformedRequest, TestName = "Flag_p_on_a_mechanism_without_plus_is_malformed")]
    [TestCase(true, true, "p=tls-unique,,n=user,r=abc", SaslFailures.MalformedRequest, TestName = "Unsupported_channel_binding_type_is_malformed")]
    [TestCase(true, true, "n,,n=user,r=abc", SaslFailures.MalformedRequest, TestName = "Flag_n_on_a_plus_mechanism_is_malformed")]
    [TestCase(true, true, "y,,n=user,r=abc", SaslFailures.MalformedRequest, TestName = "Flag_y_on_a_plus_mechanism_is_malformed")]
    [TestCase(true, false, "p=tls-server-end-point,,n=user,r=abc", SaslFailures.EncryptionRequired, TestName = "Plus_without_tls_requires_encryption")]
    [TestCase(false, true, "n,,n=user,r=abc", null, TestName = "Flag_n_is_accepted_even_when_plus_is_offered")]
    public void Gs2_channel_binding_flag_is_checked_against_the_mechanism(bool plus, bool tls, string message, string? expected)
    {
        var server = new ScramServer(ScramHash.Sha256, plus, tls ? [1, 2, 3] : null, serverOffersPlus: tls);

        var outcome = server.ClientFirst(Bytes(message), out _, out _, out var failure);

        Assert.That(failure, Is.EqualTo(expected));
        Assert.That(outcome, Is.EqualTo(expected is null ? SaslOutcome.Continue : SaslOutcome.Failure));
    }

    [TestCase("", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user", SaslFailures.MalformedRequest)]
    [TestCase("n,,r=abc,n=user", SaslFailures.MalformedRequest)]
    [TestCase("x,,n=user,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,n=user,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("nn=user,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("p=,,n=user,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("p=tls server,,n=user,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,b=x,n=user,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,a=,n=user,r=abc", SaslFailures.InvalidAuthzid)]
    [TestCase("n,a=bad=2Xescape,n=user,r=abc", SaslFailures.InvalidAuthzid)]
    [TestCase("n,a=x=2,n=user,r=abc", SaslFailures.InvalidAuthzid)]
    [TestCase("n,,m=ext,n=user,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=us=er,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user,r=", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user,r=a b", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user,r=ab\u00E9", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user,r=a\u0001b", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user\tx,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user\u0085x,r=abc", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user,r=abc,garbage", SaslFailures.MalformedRequest)]
    [TestCase("n,,n=user,r=abc,", SaslFailures.MalformedRequest)]
    [TestCase("n,,user,abc", SaslFailures.MalformedRequest)]
    public void Malformed_client_first_message_fails(string message, string expected)
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, false);

        Assert.That(server.ClientFirst(Bytes(message), out var username, out _, out var failure), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(expected));
        Assert.That(username, Is.Null);
    }

    [Test]
    public void Client_first_message_with_invalid_utf8_fails()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, false);
        byte[] message = [.. "n,,n=us"u8, 0xC3, 0x28, .. ",r=abc"u8];

        Assert.That(server.ClientFirst(message, out _, out _, out var failure), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(SaslFailures.MalformedRequest));
    }

    [Test]
    public void Client_first_message_over_4_kib_fails()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, false);
        var message = Bytes("n,,n=user,r=" + new string('a', 4096));

        Assert.That(server.ClientFirst(message, out _, out _, out var failure), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(SaslFailures.MalformedRequest));
    }

    [Test]
    public void Client_first_message_with_unknown_optional_extension_is_accepted()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, false);

        Assert.That(server.ClientFirst(Bytes("n,,n=user,r=abc,x=ignored"), out var username, out _, out _), Is.EqualTo(SaslOutcome.Continue));
        Assert.That(username, Is.EqualTo("user"));
    }

    [TestCase("c=biws,r={nonce}", SaslFailures.MalformedRequest)]
    [TestCase("c=biws,p={proof}", SaslFailures.MalformedRequest)]
    [TestCase("r={nonce},c=biws,p={proof}", SaslFailures.MalformedRequest)]
    [TestCase("c=biws,r={nonce},p=!!!!", SaslFailures.MalformedRequest)]
    [TestCase("c=biws,r={nonce},p=AAAA", SaslFailures.MalformedRequest)]
    [TestCase("c=biws,r={nonce},p={proof} ", SaslFailures.MalformedRequest)]
    [TestCase("c=bi ws,r={nonce},p={proof}", SaslFailures.MalformedRequest)]
    [TestCase("c=biws,r={nonce},m=ext,p={proof}", SaslFailures.MalformedRequest)]
    [TestCase("c=biws,r={nonce},junk,p={proof}", SaslFailures.MalformedRequest)]
    [TestCase("c=eSws,r={nonce},p={proof}", SaslFailures.NotAuthorized)]
    [TestCase("c=biws,r=abc,p={proof}", SaslFailures.NotAuthorized)]
    [TestCase("c=biws,r={nonce}x,p={proof}", SaslFailures.NotAuthorized)]
    [TestCase("c=biws,r={nonce},p={proof}", SaslFailures.NotAuthorized)]
    public void Bad_client_final_message_fails(string template, string expected)
    {
        var server = new ScramServer(ScramHash.Sha1, false, null, false);
        server.ClientFirst(Bytes("n,,n=user,r=abc"), out _, out _, out _);
        var nonce = Text(server.ServerFirst(ScramCredential.Derive("pencil", ScramHash.Sha1))).Split(',')[0][2..];
        var message = template.Replace(NoncePlaceholder, nonce).Replace(ProofPlaceholder, Convert.ToBase64String(new byte[20]));

        Assert.That(server.ClientFinal(Bytes(message), out var serverFinal, out var failure), Is.EqualTo(SaslOutcome.Failure));
        Assert.That(failure, Is.EqualTo(expected));
        Assert.That(serverFinal, Is.Null);
    }

    [Test]
    public void Server_steps_out_of_order_throw()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, false);

        Assert.That(() => server.ServerFirst(null), Throws.InvalidOperationException);
        Assert.That(() => server.ClientFinal("c=biws"u8, out _, out _), Throws.InvalidOperationException);
        server.ClientFirst(Bytes("n,,n=user,r=abc"), out _, out _, out _);
        Assert.That(() => server.ServerFirst(ScramCredential.Derive("pencil", ScramHash.Sha1)), Throws.ArgumentException);
    }

    [TestCase("r=other,s=QSXCR+Q6sek8bf92,i=4096", TestName = "Client_rejects_a_server_nonce_that_does_not_extend_its_own")]
    [TestCase("r=fyko,s=QSXCR+Q6sek8bf92,i=4096", TestName = "Client_rejects_a_server_nonce_equal_to_its_own")]
    [TestCase("r=fykoXYZ,s=QSXCR+Q6sek8bf92,i=4095", TestName = "Client_rejects_fewer_than_4096_iterations")]
    [TestCase("r=fykoXYZ,s=QSXCR+Q6sek8bf92,i=-1", TestName = "Client_rejects_a_negative_iteration_count")]
    [TestCase("r=fykoXYZ,s=QSXCR+Q6sek8bf92,i=99999999999", TestName = "Client_rejects_an_overflowing_iteration_count")]
    [TestCase("r=fykoXYZ,s=not base64,i=4096", TestName = "Client_rejects_a_salt_that_is_not_base64")]
    [TestCase("r=fykoXYZ,s=,i=4096", TestName = "Client_rejects_an_empty_salt")]
    [TestCase("m=ext,r=fykoXYZ,s=QSXCR+Q6sek8bf92,i=4096", TestName = "Client_rejects_a_mandatory_extension")]
    [TestCase("s=QSXCR+Q6sek8bf92,r=fykoXYZ,i=4096", TestName = "Client_rejects_attributes_out_of_order")]
    public void Client_rejects_a_bad_server_first_message(string serverFirst)
    {
        var client = new ScramClient(ScramHash.Sha1, "user", "pencil", nonce: "fyko");
        client.ClientFirst();

        Assert.That(() => client.ClientFinal(Bytes(serverFirst)), Throws.TypeOf<FormatException>());
    }

    [Test]
    public void Client_rejects_a_wrong_server_signature_and_reports_server_errors()
    {
        var client = new ScramClient(ScramHash.Sha1, "user", "pencil", nonce: "fyko+d2lbbFgONRv9qkxdawL");
        client.ClientFirst();
        client.ClientFinal(Bytes("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"));

        Assert.That(client.VerifyServerFinal(Bytes("v=" + Convert.ToBase64String(new byte[20]))), Is.False);
        Assert.That(client.VerifyServerFinal(Bytes("e=invalid-proof")), Is.False);
        Assert.That(client.ServerError, Is.EqualTo("invalid-proof"));
    }

    [TestCase(ScramHash.Sha1, false, "SCRAM-SHA-1")]
    [TestCase(ScramHash.Sha1, true, "SCRAM-SHA-1-PLUS")]
    [TestCase(ScramHash.Sha256, false, "SCRAM-SHA-256")]
    [TestCase(ScramHash.Sha256, true, "SCRAM-SHA-256-PLUS")]
    [TestCase(ScramHash.Sha512, false, "SCRAM-SHA-512")]
    [TestCase(ScramHash.Sha512, true, "SCRAM-SHA-512-PLUS")]
    public void Mechanism_names_round_trip(ScramHash hash, bool plus, string name)
    {
        Assert.That(ScramHashes.MechanismName(hash, plus), Is.EqualTo(name));
        Assert.That(ScramHashes.TryParseMechanism(name, out var parsedHash, out var parsedPlus), Is.True);
        Assert.That((parsedHash, parsedPlus), Is.EqualTo((hash, plus)));
    }

    [TestCase("scram-sha-1")]
    [TestCase("SCRAM-SHA-384")]
    [TestCase("SCRAM-SHA-256-PLUS ")]
    [TestCase("PLAIN")]
    [TestCase("")]
    public void Unknown_mechanism_names_are_not_parsed(string name)
    {
        Assert.That(ScramHashes.TryParseMechanism(name, out _, out _), Is.False);
    }

    [Test]
    public void All_hashes_are_listed_strongest_first()
    {
        Assert.That(ScramHashes.All, Is.EqualTo(new[] { ScramHash.Sha512, ScramHash.Sha256, ScramHash.Sha1 }));
    }

    [Test]
    public void Derive_uses_4096_iterations_and_a_fresh_16_byte_salt_by_default()
    {
        var first = ScramCredential.Derive("pencil", ScramHash.Sha256);
        var second = ScramCredential.Derive("pencil", ScramHash.Sha256);

        Assert.That(first.Iterations, Is.EqualTo(4096));
        Assert.That(first.Salt, Has.Length.EqualTo(16));
        Assert.That(first.Salt, Is.Not.EqualTo(second.Salt));
        Assert.That(first.StoredKey, Has.Length.EqualTo(32));
        Assert.That(first.ServerKey, Has.Length.EqualTo(32));
    }

    [Test]
    public void Derive_rejects_prohibited_or_empty_passwords()
    {
        Assert.That(() => ScramCredential.Derive("a\u0007", ScramHash.Sha1), Throws.TypeOf<FormatException>());
        Assert.That(() => ScramCredential.Derive("\u00AD", ScramHash.Sha1), Throws.ArgumentException);
        Assert.That(() => ScramCredential.Derive("x", ScramHash.Sha1, 0), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    [TestCase(ScramHash.Sha512)]
    public void VerifyPassword_accepts_the_password_and_its_saslprep_equivalents_only(ScramHash hash)
    {
        var credential = ScramCredential.Derive("I\u00ADX", hash);

        Assert.That(credential.VerifyPassword("IX"), Is.True);
        Assert.That(credential.VerifyPassword("\u2168"), Is.True);
        Assert.That(credential.VerifyPassword("ix"), Is.False);
        Assert.That(credential.VerifyPassword(""), Is.False);
        Assert.That(credential.VerifyPassword("IX\u0007"), Is.False);
    }

    [Test]
    public void VerifyPassword_matches_the_rfc_stored_key()
    {
        var credential = ScramCredential.Derive("pencil", ScramHash.Sha1, 4096, Convert.FromBase64String("QSXCR+Q6sek8bf92"));

        Assert.That(credential.VerifyPassword("pencil"), Is.True);
        Assert.That(credential.VerifyPassword("pencil "), Is.False);
    }

    [TestCase("RSA", "SHA256")]
    [TestCase("RSA", "SHA384")]
    [TestCase("RSA", "SHA512")]
    [TestCase("RSA-PSS", "SHA256")]
    [TestCase("RSA-PSS", "SHA384")]
    [TestCase("ECDSA", "SHA256")]
    [TestCase("ECDSA", "SHA384")]
    public void Tls_server_end_point_hashes_the_certificate_with_its_signature_hash(string keyType, string signatureHash)
    {
        using var cert = SelfSigned(keyType, new HashAlgorithmName(signatureHash));

        var expected = signatureHash switch
        {
            "SHA384" => SHA384.HashData(cert.RawData),
            "SHA512" => SHA512.HashData(cert.RawData),
            // RFC 5929 §4.1: SHA-1 (and MD5) are raised to SHA-256.
            _ => SHA256.HashData(cert.RawData),
        };
        Assert.That(ChannelBinding.TlsServerEndPoint(cert), Is.EqualTo(expected));
        Assert.That(ChannelBinding.TryTlsServerEndPoint(cert, out var data), Is.True);
        Assert.That(data, Is.EqualTo(expected));
    }

    [Test]
    public void Tls_server_end_point_raises_a_sha1_signature_hash_to_sha256()
    {
        using var rsa = RSA.Create(2048);
        using var cert = SignedWithOid(rsa, "1.2.840.113549.1.1.5", data => rsa.SignData(data, HashAlgorithmName.SHA1, RSASignaturePadding.Pkcs1));

        Assert.That(cert.SignatureAlgorithm.Value, Is.EqualTo("1.2.840.113549.1.1.5"));
        Assert.That(ChannelBinding.TlsServerEndPoint(cert), Is.EqualTo(SHA256.HashData(cert.RawData)));
    }

    [Test]
    public void Tls_server_end_point_is_undefined_for_ed25519_signatures()
    {
        using var rsa = RSA.Create(2048);
        // Only the algorithm identifier matters here; the signature bytes are never checked.
        using var cert = SignedWithOid(rsa, "1.3.101.112", _ => new byte[64]);

        Assert.That(ChannelBinding.TryTlsServerEndPoint(cert, out var data), Is.False);
        Assert.That(data, Is.Empty);
        Assert.That(() => ChannelBinding.TlsServerEndPoint(cert), Throws.TypeOf<NotSupportedException>());
    }

    // CertificateRequest refuses SHA-1 and unknown algorithms, so these certificates are signed by hand.
    private static X509Certificate2 SignedWithOid(RSA key, string signatureOid, Func<byte[], byte[]> sign)
    {
        var generator = new FixedOidGenerator(X509SignatureGenerator.CreateForRSA(key, RSASignaturePadding.Pkcs1).PublicKey, signatureOid, sign);
        var request = new CertificateRequest(new X500DistinguishedName("CN=example.com"), generator.PublicKey, HashAlgorithmName.SHA256);
        return request.Create(request.SubjectName, generator, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3, 4]);
    }

    private sealed class FixedOidGenerator(PublicKey publicKey, string oid, Func<byte[], byte[]> sign) : X509SignatureGenerator
    {
        public override byte[] GetSignatureAlgorithmIdentifier(HashAlgorithmName hashAlgorithm)
        {
            var writer = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
            using (writer.PushSequence())
            {
                writer.WriteObjectIdentifier(oid);
                if (oid.StartsWith("1.2.840.113549", StringComparison.Ordinal))
                    writer.WriteNull();
            }
            return writer.Encode();
        }

        public override byte[] SignData(byte[] data, HashAlgorithmName hashAlgorithm) => sign(data);

        protected override PublicKey BuildPublicKey() => publicKey;
    }

    private static X509Certificate2 SelfSigned(string keyType, HashAlgorithmName hash)
    {
        var subject = "CN=example.com";
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        var notAfter = DateTimeOffset.UtcNow.AddDays(1);
        if (keyType == "ECDSA")
        {
            using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            return new CertificateRequest(subject, ec, hash).CreateSelfSigned(notBefore, notAfter);
        }
        using var rsa = RSA.Create(2048);
        var padding = keyType == "RSA-PSS" ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1;
        return new CertificateRequest(subject, rsa, hash, padding).CreateSelfSigned(notBefore, notAfter);
    }

    private static SaslOutcome Run(ScramClient client, ScramServer server, ScramCredential credential, out string? failure, out byte[]? serverFinal)
    {
        serverFinal = null;
        var outcome = server.ClientFirst(client.ClientFirst(), out _, out _, out failure);
        if (outcome != SaslOutcome.Continue)
            return outcome;
        var clientFinal = client.ClientFinal(server.ServerFirst(credential));
        return server.ClientFinal(clientFinal, out serverFinal, out failure);
    }

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
