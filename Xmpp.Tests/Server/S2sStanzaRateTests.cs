using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Xmpp:S2s:StanzasPerSecondPerDomain on b.test: a.test's stanzas share one token bucket. A burst from a.test gets
/// policy-violation (type wait, RFC 6120 §8.3.3.12) beyond the bucket while the first stanzas are delivered; presence
/// over the rate is dropped, and answers (IQ results, RFC 6120 §8.3.1) always pass.
[TestFixture, Category("S2s")]
public sealed class S2sStanzaRateTests
{
    private const int Burst = 5;
    private S2sPair _pair = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (domain, o) =>
        {
            if (domain != "b.test") return;
            // Practically no refill during the test: exactly the burst gets through.
            o["Xmpp:S2s:StanzasPerSecondPerDomain"] = "0.01";
            o["Xmpp:S2s:StanzaBurstPerDomain"] = Burst.ToString();
        });
        await _pair.B.AddUserAsync("bob", "bob-secret");
        await _pair.A.AddUserAsync("alice", "alice-secret");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _pair.DisposeAsync();

    private static Task<TestClient> Login(TestServer server, string user) =>
        TestClient.ConnectAsync(server, user, user + "-secret", "phone", sendPresence: true);

    [Test]
    public async Task A_burst_from_a_remote_domain_gets_policy_violation_beyond_the_bucket_and_answers_still_pass()
    {
        using var refused = new RefusalCounts(_pair.B);
        await using var bob = await Login(_pair.B, "bob");
        await using var alice = await Login(_pair.A, "alice");
        const int sent = 10;
        for (int i = 0; i < sent; i++)
            await alice.SendAsync($"<message to='bob@b.test' type='chat' id='burst-{i}'><body>{i}</body></message>");

        for (int i = 0; i < Burst; i++)
        {
            var m = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("id")?.StartsWith("burst-", StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(20));
            Assert.That(m.Attr("id"), Is.EqualTo($"burst-{i}"), "the first stanzas fit the burst, in order");
        }
        for (int i = Burst; i < sent; i++)
        {
            var error = await alice.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error", TimeSpan.FromSeconds(20));
            Assert.That(error.Attr("id"), Is.EqualTo($"burst-{i}"));
            Assert.That(error.Attr("from"), Is.EqualTo("bob@b.test"));
            var condition = error.Child("error", Ns.Client);
            Assert.That(condition?.Attr("type"), Is.EqualTo("wait"));
            Assert.That(condition!.Child("policy-violation", Ns.StanzaErrors), Is.Not.Null, condition.ToString());
        }

        // Presence over the rate has nobody to answer: dropped, counted, and no error comes back.
        await alice.SendAsync("<presence to='bob@b.test'/>");
        Assert.That(await Wait.UntilAsync(() => refused["s2s-domain-rate"] == sent - Burst + 1, TimeSpan.FromSeconds(20)),
            $"refusals counted: {refused["s2s-domain-rate"]}");
        Assert.That(await bob.TryReceiveAsync(e => e.Name is "message" or "presence" && e.Attr("from")?.StartsWith("alice@", StringComparison.Ordinal) == true,
            TimeSpan.FromMilliseconds(500)), Is.Null, "nothing over the rate reaches bob");
        Assert.That(await alice.TryReceiveAsync(e => e.Attr("type") == "error", TimeSpan.FromMilliseconds(200)), Is.Null);

        // An IQ result from a.test is an answer: it passes the empty bucket and completes bob's request.
        await bob.SendAsync("<iq type='get' to='alice@a.test/phone' id='ask-1'><query xmlns='jabber:iq:version'/></iq>");
        var request = await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "ask-1", TimeSpan.FromSeconds(20));
        await alice.SendAsync($"<iq type='result' to='{request.Attr("from")}' id='ask-1'><query xmlns='jabber:iq:version'><name>t</name></query></iq>");
        var result = await bob.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "ask-1", TimeSpan.FromSeconds(20));
        Assert.That(result.Attr("type"), Is.EqualTo("result"));
        Assert.That(refused["s2s-domain-rate"], Is.EqualTo(sent - Burst + 1));
    }
}
