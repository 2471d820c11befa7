using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// Drives nbxmpp (python3-nbxmpp, Gajim's protocol library) through Interop/clients/nbxmpp_client.py.
[TestFixture]
[Category("Interop")]
public sealed class NbxmppInteropTests
{
    private const string Nbxmpp = "nbxmpp_client.py";
    private const string Slix = "slix_client.py";
    private TestServer _server = null!;

    private string Romeo => "romeo@" + _server.Domain;
    private string Juliet => "juliet@" + _server.Domain;

    [SetUp]
    public async Task StartServer()
    {
        ClientProcess.RequirePythonModule("nbxmpp", "python3-nbxmpp");
        _server = await TestServer.StartAsync();
        await _server.AddUserAsync("romeo", "r0meo-pass");
        await _server.AddUserAsync("juliet", "jul1et-pass");
    }

    [TearDown]
    public async Task StopServer() => await _server.DisposeAsync();

    [TestCase(false, "starttls")]
    [TestCase(true, "direct")]
    public async Task Nbxmpp_logs_in_with_scram_binds_a_resource_and_disconnects_cleanly(bool directTls, string tls)
    {
        using var run = await ClientProcess.RunScriptAsync(Nbxmpp, "login", Juliet, "jul1et-pass", _server, directTls);

        Assert.That(run.ExitCode, Is.EqualTo(0), run.Describe());
        var online = run.EventsNamed("online").Single();
        Assert.Multiple(() =>
        {
            // nbxmpp asks for the resource it wants ("nbxmpp-…"); the server may keep or replace it.
            Assert.That(ClientProcess.Text(online, "jid"), Does.StartWith(Juliet + "/").And.Length.GreaterThan(Juliet.Length + 1), run.Describe());
            Assert.That(ClientProcess.Text(online, "mechanism"), Does.StartWith("SCRAM-"), run.Describe());
            Assert.That(ClientProcess.Text(online, "tls"), Is.EqualTo(tls));
            Assert.That(run.EventsNamed("offline"), Has.Count.EqualTo(1), "no clean stream close\n" + run.Describe());
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
