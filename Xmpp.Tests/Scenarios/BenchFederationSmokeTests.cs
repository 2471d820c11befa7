using Xmpp.Bench;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

/// The load generator's federation scenario (bench/compare.sh --scenarios federation) in smoke mode: two in-process
/// servers, a.test and b.test, federating over loopback with self-signed certificates (dialback over TLS); users of
/// a.test send to users of b.test, so every message crosses the s2s link. Tiny numbers, so the harness cannot rot.
[TestFixture]
[NonParallelizable]
[Category("Federation")]
public sealed class BenchFederationSmokeTests
{
    [Test]
    public async Task Federation_scenario_delivers_every_message_from_one_server_to_the_other_exactly_once()
    {
        await using var pair = await S2sPair.StartAsync(S2sCertificates.SelfSigned, (_, c) =>
        {
            c["Xmpp:Registration:AllowRegistration"] = "true";
            c["Xmpp:Registration:MinSecondsBetweenPerIp"] = "0";
            // As bench/compare.sh runs it: the search goes far past a person's stanza rates.
            c["Xmpp:RateLimits:MessagesPerSecond"] = "0";
            c["Xmpp:RateLimits:PresencePerSecond"] = "0";
            c["Xmpp:RateLimits:IqPerSecond"] = "0";
        });
        foreach (var server in new[] { pair.A, pair.B })
        {
            var register = await RunAsync(server, "register", "--users", "10");
            Assert.That(register.Number("failures"), Is.EqualTo(0), register.ToString());
        }

        var r = await RunAsync(pair.A, "federation", "--peer-port", pair.B.C2sPort.ToString(), "--peer-tls-port", pair.B.C2sTlsPort.ToString(),
            "--peer-domain", pair.B.Domain, "--users", "10", "--online", "10", "--fixed-rate", "100", "--warmup-seconds", "1",
            "--fixed-seconds", "1", "--start-rate", "100", "--max-rate", "150", "--step-seconds", "1", "--latency-limit-ms", "5000");
        Assert.That(r["scenario"]?.ToString(), Is.EqualTo("federation"), r.ToString());
        Assert.That(r.Number("online"), Is.EqualTo(10), r.ToString());
        Assert.That(r.Number("login_failures"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("fixed_sent"), Is.EqualTo(100), r.ToString());
        Assert.That(r.Number("fixed_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("fixed_duplicates"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("warmup_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("ramp_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("max_sustained_rate"), Is.GreaterThan(90), r.ToString());
        // The messages went over a server link a.test opened to b.test, not through one server.
        Assert.That(S2sPair.Links(pair.A).Any(l => l.Outbound && l.Local == "a.test" && l.Remote == "b.test"),
            string.Join("; ", S2sPair.Links(pair.A)));
    }

    private static async Task<ResultLine> RunAsync(TestServer server, string scenario, params string[] args)
    {
        var o = BenchOptions.Parse([scenario, "--port", server.C2sPort.ToString(), "--tls-port", server.C2sTlsPort.ToString(),
            "--domain", server.Domain, "--server", "test", "--max-seconds", "60", "--concurrency", "4", .. args]);
        var result = await BenchRunner.RunAsync(o);
        TestContext.Out.WriteLine(result);
        Assert.That(result["error"], Is.Null, result.ToString());
        return result;
    }
}
