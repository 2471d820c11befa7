using System.Text.Json;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// Group chat with slixmpp's xep_0045 plugin (Interop/clients/slix_muc_client.py) against the real server.
[TestFixture]
[Category("Interop")]
public sealed class MucSlixmppInteropTests : InteropFixture
{
    private const string Script = "slix_muc_client.py";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(40);

    protected override void RequireClients() => ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");

    private static List<int> Codes(JsonElement e) => e.GetProperty("codes").EnumerateArray().Select(c => c.GetInt32()).ToList();

    // Romeo creates the room and makes it members-only with Juliet as a member; Mercutio is refused; Juliet joins,
    // speaks, sees her message reflected, and Romeo kicks her.
    [Test]
    public async Task Slixmpp_creates_configures_members_only_joins_talks_and_kicks()
    {
        await _server.AddUserAsync("mercutio", "merc-pass");
        var room = "verona@conference." + _server.Domain;
        using var romeo = ClientProcess.StartScript(Script, "owner", Romeo, "r0meo-pass", _server, scriptTimeout: Limit,
            extra: ["--room", room, "--nick", "Romeo", "--member", Juliet, "--kick", "Juliet"]);
        var configured = await romeo.WaitForEventAsync("configured", within: Limit);
        Assert.That(configured.GetProperty("fields").EnumerateArray().Select(f => f.GetString()), Does.Contain("muc#roomconfig_membersonly"));
        Assert.That(Codes(romeo.EventsNamed("joined").Single()), Does.Contain(110).And.Contain(201), romeo.Describe());

        using var mercutio = await ClientProcess.RunScriptAsync(Script, "refused", "mercutio@" + _server.Domain, "merc-pass", _server,
            scriptTimeout: Limit, extra: ["--room", room, "--nick", "Mercutio"]);
        Assert.That(mercutio.ExitCode, Is.EqualTo(0), mercutio.Describe());
        Assert.That(ClientProcess.Text(mercutio.EventsNamed("refused").Single(), "condition"), Is.EqualTo("registration-required"));

        using var juliet = await ClientProcess.RunScriptAsync(Script, "guest", Juliet, "jul1et-pass", _server, scriptTimeout: Limit,
            extra: ["--room", room, "--nick", "Juliet", "--body", "O Romeo, Romeo!"]);
        await romeo.WaitForExitAsync();
        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        Assert.That(romeo.ExitCode, Is.EqualTo(0), romeo.Describe());
        var joined = juliet.EventsNamed("joined").Single();
        Assert.Multiple(() =>
        {
            Assert.That(Codes(joined), Does.Contain(110));
            Assert.That(ClientProcess.Text(joined, "affiliation"), Is.EqualTo("member"));
            Assert.That(joined.GetProperty("occupants").EnumerateArray().Select(o => o.GetString()), Does.Contain("Romeo"));
            Assert.That(ClientProcess.Text(juliet.EventsNamed("reflected").Single(), "frm"), Is.EqualTo(room + "/Juliet"));
            Assert.That(ClientProcess.Text(romeo.EventsNamed("message").Single(), "body"), Is.EqualTo("O Romeo, Romeo!"));
            Assert.That(Codes(juliet.EventsNamed("kicked").Single()), Does.Contain(307).And.Contain(110));
            Assert.That(Codes(romeo.EventsNamed("kicked").Single()), Does.Contain(307));
        });
    }

    // Romeo (our test client) talks in a persistent room; Juliet, without joining, pages through the room's archive
    // with slixmpp's XEP-0313 plugin and its RSM iterator, two at a time, both ways.
    [Test]
    public async Task Slixmpp_pages_through_a_room_archive_both_ways()
    {
        var room = "library@conference." + _server.Domain;
        await using var romeo = await TestClient.ConnectAsync(_server, "romeo", "r0meo-pass", "pc", sendPresence: true);
        await Modules.MucTestBase.CreateInstantAsync(romeo, room, "Romeo");
        await Modules.MucTestBase.ConfigureAsync(romeo, room, ("muc#roomconfig_persistentroom", "1"));
        var bodies = new[] { "one", "two", "three", "four", "five" };
        foreach (var body in bodies)
        {
            await romeo.SendAsync($"<message to='{room}' type='groupchat'><body>{body}</body></message>");
            await romeo.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Xmpp.Protocol.Ns.Client) == body);
        }
        using var forward = await ClientProcess.RunScriptAsync("slix_client.py", "mam", Juliet, "jul1et-pass", _server,
            scriptTimeout: Limit, extra: ["--archive", room, "--page-size", "2"]);
        using var backward = await ClientProcess.RunScriptAsync("slix_client.py", "mam", Juliet, "jul1et-pass", _server,
            scriptTimeout: Limit, extra: ["--archive", room, "--page-size", "2", "--reverse"]);
        Assert.That(forward.ExitCode, Is.EqualTo(0), forward.Describe());
        Assert.That(backward.ExitCode, Is.EqualTo(0), backward.Describe());
        var archived = forward.EventsNamed("archived");
        Assert.Multiple(() =>
        {
            Assert.That(archived.Select(m => ClientProcess.Text(m, "body")), Is.EqualTo(bodies), forward.Describe());
            Assert.That(archived.Select(m => ClientProcess.Text(m, "from")), Has.All.EqualTo(room + "/Romeo"));
            Assert.That(archived.Select(m => ClientProcess.Text(m, "type")), Has.All.EqualTo("groupchat"));
            Assert.That(forward.EventsNamed("page").Select(p => ClientProcess.Text(p, "complete")), Is.EqualTo(new[] { "false", "false", "true" }));
            Assert.That(backward.EventsNamed("archived").Select(m => ClientProcess.Text(m, "body")),
                Is.EqualTo(new[] { "four", "five", "two", "three", "one" }), backward.Describe());
        });
    }

    // Romeo (our test client) talks in a room; Juliet joins with nbxmpp asking for two messages of history and gets
    // the last two, stamped by the room (nbxmpp takes them as the server's delay), then the subject.
    [Test]
    public async Task Nbxmpp_joins_and_receives_limited_history_with_the_rooms_delay()
    {
        ClientProcess.RequirePythonModule("nbxmpp", "python3-nbxmpp");
        var room = "balcony@conference." + _server.Domain;
        await using var romeo = await TestClient.ConnectAsync(_server, "romeo", "r0meo-pass", "pc", sendPresence: true);
        await Modules.MucTestBase.CreateInstantAsync(romeo, room, "Romeo");
        foreach (var body in new[] { "one", "two", "three" })
        {
            await romeo.SendAsync($"<message to='{room}' type='groupchat'><body>{body}</body></message>");
            await romeo.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Xmpp.Protocol.Ns.Client) == body);
        }
        using var juliet = await ClientProcess.RunScriptAsync("nbxmpp_muc_client.py", "history", Juliet, "jul1et-pass", _server,
            scriptTimeout: Limit, extra: ["--room", room, "--nick", "Juliet", "--maxstanzas", "2"]);
        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        var history = juliet.EventsNamed("history");
        Assert.Multiple(() =>
        {
            Assert.That(Codes(juliet.EventsNamed("self").Single()), Does.Contain(110));
            Assert.That(history.Select(h => ClientProcess.Text(h, "body")), Is.EqualTo(new[] { "two", "three" }), juliet.Describe());
            Assert.That(history.Select(h => ClientProcess.Text(h, "frm")), Has.All.EqualTo(room + "/Romeo"));
            Assert.That(history.Select(h => ClientProcess.Flag(h, "server_delay")), Has.All.True);
            Assert.That(history.Select(h => ClientProcess.Text(h, "stanza_id_by")), Has.All.EqualTo(room));
            Assert.That(juliet.EventsNamed("subject"), Has.Count.EqualTo(1));
        });
    }
}
