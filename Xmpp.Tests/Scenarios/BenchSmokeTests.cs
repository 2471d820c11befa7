using Xmpp.Bench;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

/// The load generator (bench/Xmpp.Bench) in smoke mode against the in-process server: tiny numbers, a few seconds
/// each, so the harness cannot rot. Accounts are created by the harness itself through in-band registration.
[TestFixture]
[NonParallelizable]
public sealed class BenchSmokeTests
{
    private TestServer _server = null!;

    [SetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(configure: c =>
        {
            c["Xmpp:Registration:AllowRegistration"] = "true";
            c["Xmpp:Registration:MinSecondsBetweenPerIp"] = "0";
            // As bench/compare.sh runs it: the throughput search goes far past a person's stanza rates.
            c["Xmpp:RateLimits:MessagesPerSecond"] = "0";
            c["Xmpp:RateLimits:PresencePerSecond"] = "0";
            c["Xmpp:RateLimits:IqPerSecond"] = "0";
        });
        var register = await RunAsync("register", "--users", "12");
        Assert.That(register.Number("failures"), Is.EqualTo(0), register.ToString());
    }

    [TearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private async Task<ResultLine> RunAsync(string scenario, params string[] args)
    {
        var o = BenchOptions.Parse([scenario, "--port", _server.C2sPort.ToString(), "--tls-port", _server.C2sTlsPort.ToString(),
            "--domain", _server.Domain, "--server", "test", "--max-seconds", "60", "--concurrency", "4", .. args]);
        var result = await BenchRunner.RunAsync(o);
        TestContext.Out.WriteLine(result);
        Assert.That(result["error"], Is.Null, result.ToString());
        return result;
    }

    [Test]
    public async Task Login_scenario_logs_every_session_in_over_starttls_with_scram_sha_1()
    {
        var r = await RunAsync("login", "--users", "12", "--sessions", "20");
        Assert.That(r.Number("sessions"), Is.EqualTo(20), r.ToString());
        Assert.That(r.Number("failures"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("sessions_per_s"), Is.GreaterThan(0));
    }

    [Test]
    public async Task Login_scenario_with_the_server_pid_reports_the_servers_cpu_per_login()
    {
        // The in-process test server shares this process, so its CPU time is ours: positive, and bounded by the run.
        var r = await RunAsync("login", "--users", "12", "--sessions", "10", "--server-pid", Environment.ProcessId.ToString());
        Assert.That(r.Number("failures"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("server_cpu_ms_per_login"), Is.GreaterThan(0).And.LessThan(r.Number("seconds") * 1000 * Environment.ProcessorCount / 10 + 1), r.ToString());
    }

    [Test]
    public async Task Login_scenario_also_works_over_direct_tls()
    {
        var r = await RunAsync("login", "--users", "12", "--sessions", "6", "--direct-tls");
        Assert.That(r.Number("sessions"), Is.EqualTo(6), r.ToString());
        Assert.That(r.Number("failures"), Is.EqualTo(0), r.ToString());
    }

    [Test]
    public async Task Wrong_password_is_counted_as_a_failure_not_a_session()
    {
        var r = await RunAsync("login", "--users", "12", "--sessions", "3", "--password", "not-the-password");
        Assert.That(r.Number("sessions"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("failures"), Is.EqualTo(3), r.ToString());
    }

    [Test]
    public async Task Idle_scenario_holds_the_sessions_and_reads_the_server_memory_from_proc()
    {
        var r = await RunAsync("idle", "--users", "12", "--sessions", "24", "--server-pid", Environment.ProcessId.ToString(),
            "--idle-seconds", "1");
        Assert.That(r.Number("sessions"), Is.EqualTo(24), r.ToString());
        Assert.That(r.Number("failures"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("rss_after_mb"), Is.GreaterThan(0), r.ToString());
    }

    [Test]
    public async Task Throughput_scenario_delivers_every_message_exactly_once()
    {
        var r = await RunAsync("throughput", "--users", "12", "--online", "10", "--fixed-rate", "100", "--warmup-seconds", "0.5", "--fixed-seconds", "1",
            "--start-rate", "100", "--max-rate", "150", "--step-seconds", "1", "--latency-limit-ms", "5000");
        Assert.That(r.Number("login_failures"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("fixed_sent"), Is.EqualTo(100), r.ToString());
        Assert.That(r.Number("fixed_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("fixed_duplicates"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("warmup_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("warmup_duplicates"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("ramp_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("max_sustained_rate"), Is.GreaterThan(90), r.ToString());
        Assert.That(r.Number("p99_ms"), Is.GreaterThan(0), r.ToString());
    }

    [Test]
    public async Task Receipts_scenario_gets_a_receipt_and_a_displayed_marker_back_for_every_message()
    {
        var r = await RunAsync("receipts", "--users", "12", "--online", "10", "--fixed-rate", "50", "--warmup-seconds", "0.5", "--fixed-seconds", "1",
            "--start-rate", "50", "--max-rate", "60", "--step-seconds", "1", "--latency-limit-ms", "5000");
        Assert.That(r.Number("fixed_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("fixed_receipts_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("fixed_markers_lost"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("receipt_rtt_p99_ms"), Is.GreaterThan(0), r.ToString());
    }

    [Test]
    public async Task Offline_scenario_drains_every_spooled_message_exactly_once()
    {
        var r = await RunAsync("offline", "--users", "12", "--messages", "200", "--receivers", "8", "--senders", "4");
        Assert.That(r.Number("failures"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("received"), Is.EqualTo(200), r.ToString());
        Assert.That(r["exactly_once"], Is.True, r.ToString());
        Assert.That(r.Number("drain_per_s"), Is.GreaterThan(0), r.ToString());
    }

    [Test]
    public async Task Mam_page_scenario_reads_full_pages_of_the_newest_archived_messages()
    {
        // 120 archived messages of u0, put in through the storage as archive-seed does.
        var archive = _server.Get<Xmpp.Storage.IStorage>().Archive("mam");
        for (var i = 0; i < 120; i++)
            await archive.AppendAsync("u0", DateTimeOffset.UtcNow, "u1@localhost",
                System.Text.Encoding.UTF8.GetBytes($"<message xmlns=\"jabber:client\" from=\"u1@localhost/r\" to=\"u0@localhost\" type=\"chat\"><body>{i}</body></message>"),
                Guid.NewGuid().ToString());

        var r = await RunAsync("mam-page", "--users", "12", "--queries", "10");

        Assert.That(r.Number("archived"), Is.EqualTo(120), r.ToString());
        Assert.That(r.Number("short_pages"), Is.EqualTo(0), r.ToString());
        Assert.That(r.Number("p50_ms"), Is.GreaterThan(0), r.ToString());
    }
}
