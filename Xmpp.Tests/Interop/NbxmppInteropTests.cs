using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// Drives nbxmpp (python3-nbxmpp, Gajim's protocol library) through Interop/clients/nbxmpp_client.py.
[TestFixture]
[Category("Interop")]
public sealed class NbxmppInteropTests : InteropFixture
{
    protected override void RequireClients()
    {
        ClientProcess.RequirePythonModule("nbxmpp", "python3-nbxmpp");
    }

    [TestCase(false, "starttls")]
    [TestCase(true, "direct")]
    public async Task Nbxmpp_logs_in_with_scram_binds_a_resource_and_disconnects_cleanly(bool directTls, string tls)
    {
        using var run = await ClientProcess.RunScriptAsync(Nbxmpp, "login", Juliet, "jul1et-pass", _server, directTls);

        AssertCleanScramLogin(run, Juliet, tls);
    }

    // Issue 20: nbxmpp gives up at its first SASL <failure/> (it reports the connection failed, it never tries the
    // next mechanism), so any login is a first-try login. Debian's 4.2.2 never binds (it drops -PLUS: no channel-binding
    // data from GLib) and looks for SASL2 as the old draft's <mechanisms xmlns='urn:xmpp:sasl:2'/>, so it uses RFC 6120
    // SASL here. Current nbxmpp reads <authentication/> and the XEP-0440 type, and would get -PLUS in SASL2.
    [TestCase(false)]
    [TestCase(true)]
    public async Task Nbxmpp_with_default_settings_logs_in_on_the_first_try(bool directTls)
    {
        using var run = await ClientProcess.RunScriptAsync(Nbxmpp, "login", Juliet, "jul1et-pass", _server, directTls);

        Assert.That(run.ExitCode, Is.EqualTo(0), run.Describe());
        var online = run.EventsNamed("online").Single();
        Assert.Multiple(() =>
        {
            Assert.That(ClientProcess.Text(online, "mechanism"), Is.EqualTo("SCRAM-SHA-512"), run.Describe());
            Assert.That(ClientProcess.Flag(online, "sasl2"), Is.False, "4.2.2 does not know XEP-0388's <authentication/>");
            Assert.That(run.EventsNamed("error"), Is.Empty, run.Describe());
        });
    }

    [Test]
    public async Task Nbxmpp_message_reaches_slixmpp_with_exact_body_and_sender()
    {
        ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");
        const string body = "Parting is such sweet sorrow ♥ \"quoted\" & <tagged>";
        var id = "nb-" + Guid.NewGuid().ToString("N");
        using var romeo = ClientProcess.StartScript(Slix, "receive", Romeo, "r0meo-pass", _server,
            directTls: true, extra: ["--count", "1"]);
        await romeo.WaitForEventAsync("online");

        using var juliet = await ClientProcess.RunScriptAsync(Nbxmpp, "send", Juliet, "jul1et-pass", _server,
            extra: ["--to", Romeo, "--body", body, "--id", id]);
        await romeo.WaitForExitAsync();

        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        Assert.That(romeo.ExitCode, Is.EqualTo(0), romeo.Describe());
        var message = romeo.EventsNamed("message").Single();
        Assert.Multiple(() =>
        {
            Assert.That(ClientProcess.Text(message, "body"), Is.EqualTo(body));
            Assert.That(ClientProcess.Text(message, "from")?.Split('/')[0], Is.EqualTo(Juliet));
            Assert.That(ClientProcess.Text(message, "id"), Is.EqualTo(id));
            Assert.That(ClientProcess.Text(message, "type"), Is.EqualTo("chat"));
        });
    }
}
