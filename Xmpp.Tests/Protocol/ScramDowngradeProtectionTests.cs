using System.Text;
using Xmpp.Protocol.Sasl;

namespace Xmpp.Tests.Protocol;

/// XEP-0474 §5.1 hash and the HT token proofs, against the specifications' own examples where they give one.
public class ScramDowngradeProtectionTests
{
    [Test]
    public void The_hash_matches_the_full_example_of_xep0474()
    {
        // XEP-0474 §5.3: SHA-1 of 'SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point'.
        var h = ScramDowngradeProtection.Compute(ScramHash.Sha1, ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], ["tls-server-end-point", "tls-exporter"]);
        Assert.That(h, Is.EqualTo("G6k/rBLDqgOhRRaCuuatSDFkJ08="));
    }

    [Test]
    public void Without_xep0440_no_separator_or_binding_types_are_hashed()
    {
        var h = ScramDowngradeProtection.Compute(ScramHash.Sha256, ["SCRAM-SHA-256", "PLAIN"], null);
        var expected = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(Encoding.ASCII.GetBytes("PLAIN\x1eSCRAM-SHA-256")));
        Assert.That(h, Is.EqualTo(expected));
    }

    [Test]
    public void Server_first_message_carries_h_and_a_client_reads_it_back()
    {
        var server = new ScramServer(ScramHash.Sha256, plus: false, cbindData: null, serverOffersPlus: false) { DowngradeProtection = "abc=" };
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil");
        server.ClientFirst(client.ClientFirst(), out _, out _, out _);
        var first = server.ServerFirst(ScramCredential.Derive("pencil", ScramHash.Sha256, 4096));
        Assert.That(Encoding.UTF8.GetString(first), Does.EndWith(",h=abc="));
        var final = client.ClientFinal(first);
        Assert.That(client.DowngradeProtection, Is.EqualTo("abc="));
        Assert.That(server.ClientFinal(final, out _, out _), Is.EqualTo(SaslOutcome.Success), "the attribute is part of the signed AuthMessage on both sides");
    }

    [TestCase("HT-SHA-256-NONE", HashedTokenBinding.None)]
    [TestCase("HT-SHA-256-ENDP", HashedTokenBinding.EndPoint)]
    [TestCase("HT-SHA-256-UNIQ", HashedTokenBinding.Unique)]
    public void Ht_mechanism_names_map_to_their_binding(string name, HashedTokenBinding binding)
    {
        Assert.That(HashedToken.TryParseMechanism(name, out var b) && b == binding);
    }

    [TestCase("HT-SHA-256-EXPR")]
    [TestCase("HT-SHA-1-NONE")]
    [TestCase("ht-sha-256-none")]
    public void Unknown_ht_mechanisms_are_not_recognised(string name) =>
        Assert.That(HashedToken.TryParseMechanism(name, out _), Is.False);

    [Test]
    public void Ht_initial_message_is_authcid_nul_hmac_of_initiator_and_parses_back()
    {
        var token = Encoding.UTF8.GetBytes("secret-token");
        var message = HashedToken.BuildInitial("juliet", token, [1, 2, 3]);
        Assert.That(HashedToken.TryParseInitial(message, out var user, out var hash));
        Assert.That(user, Is.EqualTo("juliet"));
        var expected = System.Security.Cryptography.HMACSHA256.HashData(token, (byte[])[.. "Initiator"u8.ToArray(), 1, 2, 3]);
        Assert.That(hash, Is.EqualTo(expected));
        Assert.That(HashedToken.Responder(token, [1, 2, 3]), Is.EqualTo(System.Security.Cryptography.HMACSHA256.HashData(token, (byte[])[.. "Responder"u8.ToArray(), 1, 2, 3])));
    }

    [TestCase(new byte[] { 0, 1, 2 })]
    [TestCase(new byte[] { (byte)'a', (byte)'b' })]
    [TestCase(new byte[] { (byte)'a', 0, 1, 2, 3 })]
    public void Malformed_ht_messages_are_refused(byte[] message) =>
        Assert.That(HashedToken.TryParseInitial(message, out _, out _), Is.False);
}
