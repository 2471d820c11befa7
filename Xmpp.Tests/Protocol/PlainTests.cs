using System.Text;
using Xmpp.Protocol.Sasl;

namespace Xmpp.Tests.Protocol;

public class PlainTests
{
    [TestCase("\0user\0pencil", null, "user", "pencil", TestName = "Plain_without_authzid_parses")]
    [TestCase("admin@example.com\0user\0pencil", "admin@example.com", "user", "pencil", TestName = "Plain_with_authzid_parses")]
    [TestCase("\0j\u00FCrgen\0p\u00E4ss w\u00F6rd", null, "j\u00FCrgen", "p\u00E4ss w\u00F6rd", TestName = "Plain_with_non_ascii_utf8_parses")]
    public void Plain_message_parses(string message, string? authzid, string username, string password)
    {
        var ok = PlainMechanism.TryParse(Encoding.UTF8.GetBytes(message), out var parsedAuthzid, out var parsedUser, out var parsedPassword);

        Assert.That(ok, Is.True);
        Assert.That(parsedAuthzid, Is.EqualTo(authzid));
        Assert.That(parsedUser, Is.EqualTo(username));
        Assert.That(parsedPassword, Is.EqualTo(password));
    }

    [TestCase("", TestName = "Plain_rejects_an_empty_message")]
    [TestCase("userpencil", TestName = "Plain_rejects_a_message_without_nuls")]
    [TestCase("user\0pencil", TestName = "Plain_rejects_a_message_with_one_nul")]
    [TestCase("\0\0pencil", TestName = "Plain_rejects_an_empty_username")]
    [TestCase("\0user\0", TestName = "Plain_rejects_an_empty_password")]
    [TestCase("\0\0", TestName = "Plain_rejects_only_nuls")]
    [TestCase("\0user\0pen\0cil", TestName = "Plain_rejects_a_third_nul")]
    public void Plain_message_is_rejected(string message)
    {
        var ok = PlainMechanism.TryParse(Encoding.UTF8.GetBytes(message), out var authzid, out var username, out var password);

        Assert.That(ok, Is.False);
        Assert.That(authzid, Is.Null);
        Assert.That(username, Is.Empty);
        Assert.That(password, Is.Empty);
    }

    [Test]
    public void Plain_rejects_invalid_utf8()
    {
        byte[] message = [0, (byte)'u', 0, 0xC3, 0x28];

        Assert.That(PlainMechanism.TryParse(message, out _, out _, out _), Is.False);
    }

    [Test]
    public void Plain_rejects_messages_over_4_kib()
    {
        var message = Encoding.UTF8.GetBytes("\0user\0" + new string('x', 4096));

        Assert.That(PlainMechanism.TryParse(message, out _, out _, out _), Is.False);
    }

    [Test]
    public void Plain_build_round_trips_through_parse()
    {
        var message = PlainMechanism.Build("juliet@example.com", "romeo", "s3cr,t=");

        Assert.That(PlainMechanism.TryParse(message, out var authzid, out var username, out var password), Is.True);
        Assert.That((authzid, username, password), Is.EqualTo(("juliet@example.com", "romeo", "s3cr,t=")));
    }

    [Test]
    public void Plain_password_is_checked_against_a_scram_credential()
    {
        var credential = ScramCredential.Derive("pencil", ScramHash.Sha256);
        PlainMechanism.TryParse("\0user\0pencil"u8, out _, out _, out var password);

        Assert.That(credential.VerifyPassword(password), Is.True);
        Assert.That(credential.VerifyPassword("pencil2"), Is.False);
    }
}
