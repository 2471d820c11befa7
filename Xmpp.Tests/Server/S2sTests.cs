using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Two of our servers federating over loopback: alice@a.test and bob@b.test talk as if they shared a server.
[TestFixture, Category("S2s")]
[TestFixtureSource(nameof(Kinds))]
public sealed class S2sTests(S2sCertificates certificates)
{
    public static readonly object[] Kinds = [S2sCertificates.FromTestCa, S2sCertificates.SelfSigned];

    private S2sPair _pair = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pair = await S2sPair.StartAsync(certificates);
        foreach (var u in new[] { "alice", "carol", "dave" }) await _pair.A.AddUserAsync(u, u + "-secret");
        foreach (var u in new[] { "bob", "erin", "frank" }) await _pair.B.AddUserAsync(u, u + "-secret");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _pair.DisposeAsync();

    private static async Task<TestClient> Login(TestServer server, string user, string resource = "phone", bool presence = true)
    {
        var c = await TestClient.ConnectAsync(server, user, user + "-secret", resource);
        if (presence)
        {
            await c.SendAsync("<presence/>");
            await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        }
        return c;
    }

    [Test]
    public async Task A_chat_message_crosses_to_the_other_server_and_the_answer_comes_back()
    {
        await using var alice = await Login(_pair.A, "alice");
        await using var bob = await Login(_pair.B, "bob");
        await alice.SendAsync("<message to='bob@b.test' type='chat' id='m1'><body>Hello from a.test</body></message>");
        var got = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m1", TimeSpan.FromSeconds(20));
        Assert.That(got.Attr("from"), Is.EqualTo("alice@a.test/phone"));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("Hello from a.test"));

        await bob.SendAsync("<message to='alice@a.test/phone' type='chat' id='m2'><body>Hello back</body></message>");
        var back = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m2", TimeSpan.FromSeconds(20));
        Assert.That(back.Attr("from"), Is.EqualTo("bob@b.test/phone"));
        Assert.That(back.ChildText("body", Ns.Client), Is.EqualTo("Hello back"));

        var expected = certificates == S2sCertificates.FromTestCa ? "SASL EXTERNAL" : "dialback";
        var outA = S2sPair.Links(_pair.A).Single(l => l.Outbound && l.Remote == "b.test");
        var outB = S2sPair.Links(_pair.B).Single(l => l.Outbound && l.Remote == "a.test");
        Assert.That(outA.Authentication, Is.EqualTo(expected));
        Assert.That(outB.Authentication, Is.EqualTo(expected));
        Assert.That(S2sPair.Links(_pair.B).Any(l => !l.Outbound && l.Remote == "a.test" && l.Authentication == expected));
    }
}
