using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// Two devices of one account, both real slixmpp clients with XEP-0280 carbons on: what one device receives
// and sends, read ticks included, shows up on the other (Interop/clients/slix_carbons.py).
[TestFixture]
[Category("Interop")]
public sealed class SlixmppCarbonsInteropTests : InteropFixture
{
    private const string Carbons = "slix_carbons.py";

    protected override void RequireClients() => ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");

    [Test]
    public async Task A_conversation_on_the_phone_with_its_read_tick_is_mirrored_on_the_desktop()
    {
        using var desk = ClientProcess.StartScript(Carbons, "watch", Romeo, "r0meo-pass", _server,
            extra: ["--resource", "desk", "--count", "3"]);
        await desk.WaitForEventAsync("carbons_enabled");
        using var phone = ClientProcess.StartScript(Carbons, "chat", Romeo, "r0meo-pass", _server, directTls: true,
            extra: ["--resource", "phone", "--to", Juliet, "--body", "By yonder blessed moon I swear"]);
        await phone.WaitForEventAsync("carbons_enabled");

        await using var juliet = await TestClient.ConnectAsync(_server, "juliet", "jul1et-pass", "balcony");
        await juliet.SendAsync("<presence/>");
        await juliet.SendAsync($"<message to='{Romeo}/phone' type='chat' id='q1'><body>Dost thou love me?</body>" +
            "<markable xmlns='urn:xmpp:chat-markers:0'/></message>");

        await phone.WaitForExitAsync();
        await desk.WaitForExitAsync();
        Assert.That(phone.ExitCode, Is.EqualTo(0), phone.Describe());
        Assert.That(desk.ExitCode, Is.EqualTo(0), desk.Describe());

        // The phone, addressed directly, got the original and no copy of it.
        Assert.That(phone.EventsNamed("message").Select(m => ClientProcess.Text(m, "id")), Is.EqualTo(new[] { "q1" }), phone.Describe());
        var copies = desk.EventsNamed("carbon");
        Assert.That(copies, Has.Count.EqualTo(3), desk.Describe());
        Assert.Multiple(() =>
        {
            Assert.That(copies.Select(c => ClientProcess.Text(c, "wrapper_from")), Has.All.EqualTo(Romeo), "copies come from the account's bare JID");
            var received = copies.Single(c => ClientProcess.Text(c, "direction") == "received");
            Assert.That(ClientProcess.Text(received, "id"), Is.EqualTo("q1"));
            Assert.That(ClientProcess.Text(received, "body"), Is.EqualTo("Dost thou love me?"));
            var sent = copies.Where(c => ClientProcess.Text(c, "direction") == "sent").ToList();
            Assert.That(sent.Select(c => ClientProcess.Text(c, "body")).Where(b => b is not null),
                Is.EqualTo(new[] { "By yonder blessed moon I swear" }));
            Assert.That(sent.Select(c => ClientProcess.Text(c, "displayed")).Where(d => d is not null), Is.EqualTo(new[] { "q1" }),
                "the read tick sent from the phone reaches the desktop too");
        });

        // Juliet gets the answer and the read tick, once each.
        var answer = await juliet.ReceiveAsync(m => m.Name == "message" && m.ChildText("body", "jabber:client") is not null);
        Assert.That(answer.Attr("from"), Is.EqualTo(Romeo + "/phone"));
        await juliet.ReceiveAsync(m => m.Name == "message" && m.Child("displayed", "urn:xmpp:chat-markers:0")?.Attr("id") == "q1");
    }
}
