using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The server-wide block list (Xmpp:Blocked): no stanza from or to a listed address or domain, in either direction.
[TestFixture]
[Category("Abuse")]
public sealed class BlockListTests
{
    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Blocked:Jids:0"] = "mallory@localhost";
            o["Xmpp:Blocked:Domains:0"] = "spam.example";
        });
        foreach (var u in new[] { "alice", "bob", "mallory" }) await _server.AddUserAsync(u, u + "-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private Task<TestClient> Login(string user) => TestClient.ConnectAsync(_server, user, user + "-pw", "pc", sendPresence: true);

    private static string? Condition(Element stanza) =>
        stanza.Child("error", Ns.Client)?.Elements().FirstOrDefault(e => e.Namespace == Ns.StanzaErrors && e.Name != "text")?.Name;

    [Test]
    public async Task A_blocked_account_can_neither_send_nor_receive_and_is_told()
    {
        await using var alice = await Login("alice");
        await using var mallory = await Login("mallory");
        await mallory.SendAsync("<message to='alice@localhost' type='chat' id='m1'><body>buy now</body></message>");
        var refused = await mallory.ReceiveAsync(e => e.Attr("id") == "m1");
        Assert.That(Condition(refused), Is.EqualTo(StanzaErrors.NotAllowed), refused.ToString());
        Assert.That(await alice.TryReceiveAsync(e => e.Attr("id") == "m1", TimeSpan.FromMilliseconds(300)), Is.Null);

        await alice.SendAsync("<message to='mallory@localhost/pc' type='chat' id='a1'><body>stop</body></message>");
        var back = await alice.ReceiveAsync(e => e.Attr("id") == "a1");
        Assert.That(Condition(back), Is.EqualTo(StanzaErrors.NotAllowed), back.ToString());
        Assert.That(await mallory.TryReceiveAsync(e => e.Attr("id") == "a1", TimeSpan.FromMilliseconds(300)), Is.Null);

        // Presence subscriptions and IQs are refused the same way, and nothing reaches the rosters.
        await mallory.SendAsync("<presence to='alice@localhost' type='subscribe' id='s1'/>");
        Assert.That(Condition(await mallory.ReceiveAsync(e => e.Attr("id") == "s1")), Is.EqualTo(StanzaErrors.NotAllowed));
        var iq = await alice.IqAsync("<iq type='get' to='mallory@localhost/pc'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(Condition(iq), Is.EqualTo(StanzaErrors.NotAllowed), iq.ToString());
    }

    [Test]
    public async Task A_blocked_domain_and_its_subdomains_are_refused_and_other_accounts_are_not()
    {
        await using var alice = await Login("alice");
        await using var bob = await Login("bob");
        foreach (var to in new[] { "x@spam.example", "x@mail.spam.example", "spam.example" })
        {
            await alice.SendAsync($"<message to='{to}' type='chat' id='d-{to}'><body>hi</body></message>");
            var refused = await alice.ReceiveAsync(e => e.Attr("id") == "d-" + to);
            Assert.That(Condition(refused), Is.EqualTo(StanzaErrors.NotAllowed), refused.ToString());
        }
        // notspam.example is not a subdomain of spam.example: it meets the usual answer (no federation in this test).
        await alice.SendAsync("<message to='x@notspam.example' type='chat' id='d-other'><body>hi</body></message>");
        Assert.That(Condition(await alice.ReceiveAsync(e => e.Attr("id") == "d-other")), Is.Not.EqualTo(StanzaErrors.NotAllowed));
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='ok'><body>hi</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "ok");
    }
}
