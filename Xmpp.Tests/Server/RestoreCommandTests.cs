using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// xmppd restore BACKUPDIR with the real binary: backup, change the data, restore, start, and the backed-up state is
/// what the server serves; the replaced data is kept aside; a running server or an incomplete backup is refused.
[TestFixture]
[NonParallelizable]
[Category("Faults")]
public sealed class RestoreCommandTests
{
    private string _dir = null!;
    private int _c2s, _tls;

    [SetUp]
    public async Task Prepare()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-restore-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _c2s = TestServer.FreePort();
        _tls = TestServer.FreePort();
        foreach (var (u, p) in new[] { ("alice", "alice-pw"), ("bob", "bob-pw") })
            await Xmppd("user", "add", u, p);
    }

    [TearDown]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    private string Data => Path.Combine(_dir, "data");

    private string Backup => Path.Combine(_dir, "backup");

    private string[] Args() => ServerProcess.LoopbackArgs(_c2s, _tls, Data, Path.Combine(_dir, "certs"));

    private async Task<string> Xmppd(params string[] words)
    {
        var (exit, output) = await ServerProcess.RunAsync(_dir, [.. words, .. Args()]);
        Assert.That(exit, Is.EqualTo(0), output);
        return output;
    }

    [Test]
    public async Task Restore_brings_back_the_backed_up_accounts_and_spool_and_keeps_the_replaced_data_aside()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        await using (var server = await ServerProcess.StartAsync(_dir, _c2s, Args()))
        {
            await using (var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc"))
            {
                await alice.SendAsync("<message to='bob@localhost' type='chat' id='kept'><body>kept</body></message>");
                await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            }
            await Xmppd("backup", Backup); // online, through the running server

            // A running server holds the data folder: restore refuses and changes nothing.
            var (refusedExit, refused) = await ServerProcess.RunAsync(_dir, ["restore", Backup, .. Args()]);
            Assert.That(refusedExit, Is.EqualTo(1), refused);
            Assert.That(refused, Does.Contain("stop the server"));

            // After the backup: bob reads the spooled message (the spool empties) and carol gets an account.
            await using (var bob = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "phone"))
            {
                await bob.SendAsync("<presence/>");
                Assert.That((await bob.ReceiveAsync("message")).Attr("id"), Is.EqualTo("kept"));
            }
            await Xmppd("user", "add", "carol", "carol-pw");
            Assert.That(await server.TerminateAsync(), Is.EqualTo(0));
        }

        var restored = await Xmppd("restore", Backup);
        var aside = Directory.GetDirectories(_dir, "data.before-restore-*");
        Assert.That(aside, Has.Length.EqualTo(1), restored);
        Assert.That(File.Exists(Path.Combine(aside[0], "xmpp.db")), "the replaced database is kept");
        Assert.That(restored, Does.Contain(aside[0]));

        var users = await Xmppd("user", "list");
        Assert.That(users, Does.Contain("alice@localhost").And.Contain("bob@localhost").And.Not.Contain("carol"));
        await using var again = await ServerProcess.StartAsync(_dir, _c2s, Args());
        await using var bobAgain = await TestClient.ConnectAsync(endpoint, "bob", "bob-pw", "phone");
        await bobAgain.SendAsync("<presence/>");
        Assert.That((await bobAgain.ReceiveAsync("message")).Attr("id"), Is.EqualTo("kept"), "the spool as it was backed up");
    }

    [Test]
    public async Task An_incomplete_backup_is_refused_and_the_data_folder_left_alone()
    {
        await Xmppd("backup", Backup);
        File.Delete(Path.Combine(Backup, "BACKUP-COMPLETE"));
        await Xmppd("user", "add", "carol", "carol-pw");

        var (exit, output) = await ServerProcess.RunAsync(_dir, ["restore", Backup, .. Args()]);
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("not a complete backup"));
        Assert.That(Directory.GetDirectories(_dir, "data.before-restore-*"), Is.Empty);
        Assert.That(await Xmppd("user", "list"), Does.Contain("carol@localhost"));
    }
}
