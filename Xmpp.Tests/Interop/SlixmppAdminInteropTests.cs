using Xmpp.Protocol;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// XEP-0050/XEP-0133 with slixmpp's own command plugins (Interop/clients/slix_admin.py): an admin lists the commands,
// adds a user and sends an announcement, as an admin menu does; the new user logs in, an online user gets the news.
[TestFixture]
[Category("Interop")]
public sealed class SlixmppAdminInteropTests
{
    [Test]
    public async Task A_slixmpp_admin_adds_a_user_and_announces_to_online_users()
    {
        ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:Admins:0"] = "boss@localhost");
        await server.AddUserAsync("boss", "b0ss-pass");
        await server.AddUserAsync("bob", "bob-pw");
        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "pc", sendPresence: true);

        using var admin = await ClientProcess.RunAsync(ClientProcess.DebianPython,
            [ClientProcess.ClientScript("slix_admin.py"), "--jid", "boss@localhost", "--password", "b0ss-pass", "--host", server.Host,
             "--port", server.C2sPort.ToString(), "--timeout", "20", "--new-jid", "newbie@localhost", "--new-password", "n3wbie-pass",
             "--announcement", "Maintenance tonight"],
            TimeSpan.FromSeconds(30));

        Assert.That(admin.ExitCode, Is.Zero, admin.Describe());
        var nodes = admin.EventsNamed("commands").Single().GetProperty("nodes").EnumerateArray().Select(n => n.GetString()).ToList();
        Assert.That(nodes, Does.Contain("http://jabber.org/protocol/admin#add-user").And.Contain("http://jabber.org/protocol/admin#announce"));
        var completed = admin.EventsNamed("completed");
        Assert.That(completed.Select(e => ClientProcess.Text(e, "status")), Is.EqualTo(new[] { "completed", "completed" }), admin.Describe());
        Assert.That(completed.Select(e => ClientProcess.Text(e, "note_type")), Is.EqualTo(new[] { "info", "info" }), admin.Describe());

        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("newbie"), Is.Not.Null);
        await using (var newbie = await TestClient.ConnectAsync(server, "newbie", "n3wbie-pass", "phone"))
            Assert.That(newbie.Jid!.Bare.ToString(), Is.EqualTo("newbie@localhost"));
        var news = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("from") == "localhost");
        Assert.That(news.ChildText("body", Ns.Client), Is.EqualTo("Maintenance tonight"));
        Assert.That(news.ChildText("subject", Ns.Client), Is.EqualTo("From slixmpp"));
    }
}
