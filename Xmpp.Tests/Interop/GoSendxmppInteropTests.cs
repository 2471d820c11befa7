using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// Drives go-sendxmpp (Debian go-sendxmpp): it logs in (SASL PLAIN in the Debian 0.5.6 build), sends
// initial presence and one message read from stdin, then drops the connection without </stream:stream>,
// so the server must route every complete stanza it read before the EOF.
[TestFixture]
[Category("Interop")]
public sealed class GoSendxmppInteropTests : InteropFixture
{
    protected override void RequireClients()
    {
        ClientProcess.RequireProgram("go-sendxmpp", "go-sendxmpp");
        ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task Go_sendxmpp_message_reaches_slixmpp_with_exact_body_and_sender(bool directTls)
    {
        const string body = "A rose by any other name & <so on>";
        using var juliet = ClientProcess.StartScript("slix_client.py", "receive", Juliet, "jul1et-pass", _server,
            extra: ["--count", "1"]);
        await juliet.WaitForEventAsync("online");

        var port = directTls ? _server.C2sTlsPort : _server.C2sPort;
        // -u account JID, -p password, -j host:port (no SRV lookup), -n skip certificate checks,
        // -t direct TLS (XEP-0368) instead of STARTTLS; the recipient is positional, the body comes on stdin.
        var args = new List<string> { "-u", Romeo, "-p", "r0meo-pass", "-j", $"{_server.Host}:{port}", "-n", "--timeout", "10" };
        if (directTls) args.Add("-t");
        args.Add(Juliet);
        using var romeo = await ClientProcess.RunAsync(ClientProcess.RequireProgram("go-sendxmpp", "go-sendxmpp"), args,
            TimeSpan.FromSeconds(20), stdin: body + "\n");
        await juliet.WaitForExitAsync();

        Assert.That(romeo.ExitCode, Is.EqualTo(0), romeo.Describe());
        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        var message = juliet.EventsNamed("message").Single();
        Assert.Multiple(() =>
        {
            Assert.That(ClientProcess.Text(message, "body"), Is.EqualTo(body));
            Assert.That(ClientProcess.Text(message, "from"), Does.StartWith(Romeo + "/"));
            Assert.That(ClientProcess.Text(message, "type"), Is.EqualTo("chat"));
        });
    }

    // Issue 20: go-sendxmpp has no fallback after a SASL <failure/>, it exits with an error. So the test above, which
    // needs exit code 0, is a first-try login; this one shows the failure path really ends the program.
    [Test]
    public async Task Go_sendxmpp_exits_with_an_error_at_its_first_sasl_failure()
    {
        var args = new List<string> { "-u", Romeo, "-p", "not-the-password", "-j", $"{_server.Host}:{_server.C2sPort}", "-n", "--timeout", "10", Juliet };
        using var romeo = await ClientProcess.RunAsync(ClientProcess.RequireProgram("go-sendxmpp", "go-sendxmpp"), args,
            TimeSpan.FromSeconds(20), stdin: "never sent\n");

        Assert.That(romeo.ExitCode, Is.Not.EqualTo(0), romeo.Describe());
        Assert.That(romeo.Describe(), Does.Contain("not-authorized").Or.Contain("auth failure").IgnoreCase);
    }
}
