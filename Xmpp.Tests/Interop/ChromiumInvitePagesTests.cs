using System.Text.Json;
using Xmpp.Server.Modules.Invites;
using Xmpp.Storage;
using Xmpp.Tests.Modules;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// The invitation and password pages in a real browser: Debian's headless Chromium loads the page, a script types
/// into the form and clicks its button, as a newcomer would, and the test checks the server's accounts and rosters.
/// Screenshots go to the test's output folder (screenshots/), to look at.
[TestFixture]
public sealed class ChromiumInvitePagesTests
{
    private static string Screenshot(string name) => Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots", name + ".png");

    private static string Fill(string id, string value) => $"document.getElementById('{id}').value = {JsonSerializer.Serialize(value)};";

    [Test]
    public async Task A_newcomer_signs_up_on_the_invitation_page_in_Chromium_and_then_changes_the_password_there()
    {
        await using var server = await InvitesModuleTests.Server(TestServer.WithHttp);
        var (_, token) = await server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", "alice@localhost", TimeSpan.FromDays(1));
        await using var chromium = await HeadlessChromium.StartAsync();
        var origin = $"https://localhost:{server.HttpPort}";

        await chromium.NavigateAsync($"{origin}/invite/{token}");
        Assert.That((string?)await chromium.EvaluateAsync("document.querySelector('h1').textContent"), Is.EqualTo("alice@localhost invites you to chat"));
        // The QR code image decoded and laid out (a broken data: URL or a CSP block would leave it 0 wide).
        Assert.That((int?)await chromium.EvaluateAsync("document.querySelector('img.qr').naturalWidth"), Is.GreaterThan(100));
        await chromium.ScreenshotAsync(Screenshot("invite-landing"));
        TestContext.AddTestAttachment(Screenshot("invite-landing"), "the invitation page");

        await chromium.EvaluateAndWaitForLoadAsync(Fill("username", "juliet") + Fill("password", "juliet-password") + Fill("password2", "juliet-password")
            + "document.querySelector('form button[type=submit]').click();");
        var text = (string?)await chromium.EvaluateAsync("document.body.innerText");
        Assert.That(text, Does.Contain("Your account juliet@localhost is ready"), text);
        await chromium.ScreenshotAsync(Screenshot("invite-signed-up"));
        TestContext.AddTestAttachment(Screenshot("invite-signed-up"), "after signing up");

        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("juliet"), Is.Not.Null);
        Assert.That((await InvitesModuleTests.Roster(server, "juliet"))["alice@localhost"], Is.EqualTo(Subscription.Both));
        Assert.That((await InvitesModuleTests.Roster(server, "alice"))["juliet@localhost"], Is.EqualTo(Subscription.Both));

        await chromium.NavigateAsync($"{origin}/password");
        await chromium.EvaluateAndWaitForLoadAsync(Fill("jid", "juliet@localhost") + Fill("old", "juliet-password")
            + Fill("new", "juliet-new-password") + Fill("new2", "juliet-new-password") + "document.querySelector('form button[type=submit]').click();");
        text = (string?)await chromium.EvaluateAsync("document.body.innerText");
        Assert.That(text, Does.Contain("password of juliet@localhost is changed"), text);
        await chromium.ScreenshotAsync(Screenshot("password-changed"));
        TestContext.AddTestAttachment(Screenshot("password-changed"), "after changing the password");

        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "juliet-new-password", "phone");
        Assert.That(juliet.Jid!.Bare.ToString(), Is.EqualTo("juliet@localhost"));
    }
}
