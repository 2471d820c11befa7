using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// What every real-client test shares: a fresh server per test with romeo and juliet, and the check that a
/// client logged in with SCRAM, bound a resource and closed its stream cleanly.
public abstract class InteropFixture
{
    protected const string Slix = "slix_client.py";
    protected const string Nbxmpp = "nbxmpp_client.py";

    protected TestServer _server = null!;

    protected string Romeo => "romeo@" + _server.Domain;
    protected string Juliet => "juliet@" + _server.Domain;

    /// Fails (never skips) when a client program the test needs is missing: the test command installs them.
    protected abstract void RequireClients();

    /// Settings a fixture needs beyond the defaults (for example the HTTPS endpoint).
    protected virtual void ConfigureServer(Dictionary<string, string?> options)
    {
    }

    [SetUp]
    public async Task StartServer()
    {
        RequireClients();
        _server = await TestServer.StartAsync(configure: ConfigureServer);
        await _server.AddUserAsync("romeo", "r0meo-pass");
        await _server.AddUserAsync("juliet", "jul1et-pass");
    }

    [TearDown]
    public async Task StopServer() => await _server.DisposeAsync();

    protected static void AssertCleanScramLogin(ClientProcess run, string bareJid, string tls)
    {
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Describe());
        var online = run.EventsNamed("online").Single();
        Assert.Multiple(() =>
        {
            // The client may ask for a resource of its own; the server keeps it or assigns one.
            Assert.That(ClientProcess.Text(online, "jid"), Does.StartWith(bareJid + "/").And.Length.GreaterThan(bareJid.Length + 1), run.Describe());
            Assert.That(ClientProcess.Text(online, "mechanism"), Does.StartWith("SCRAM-"), run.Describe());
            Assert.That(ClientProcess.Text(online, "tls"), Is.EqualTo(tls));
            Assert.That(run.EventsNamed("offline"), Has.Count.EqualTo(1), "no clean stream close\n" + run.Describe());
            Assert.That(run.EventsNamed("error"), Is.Empty, run.Describe());
        });
    }
}
