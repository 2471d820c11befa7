using Xmpp.Bench.Scenarios;

namespace Xmpp.Bench;

/// Runs one scenario under a hard time limit, so a run always stops by itself and reports.
public static class BenchRunner
{
    public const string Usage = """
        usage: xmpp-bench SCENARIO [--key value ...]
          scenarios: register | login | idle | throughput | receipts | federation | offline | mam-page
          target:    --host 127.0.0.1 --port 5222 --tls-port 5223 [--direct-tls] [--sm] --domain localhost --server NAME
          accounts:  --users 100 --user-prefix u --resource-prefix idle --password bench-password   (accounts u0..u{users-1})
          common:    --concurrency 50 --max-seconds 120 --login-timeout 30 [--no-spread] [--no-tls-resume]
                     --client basic|messenger   (messenger: SCRAM-SHA-256, bind, SM with resume, roster, carbons,
                     presence with caps and the disco#info answer, MAM last page, bookmarks, blocklist, CSI inactive)
          login:     --sessions 100
          idle:      --sessions 100 --server-pid PID --idle-seconds 10
          throughput/receipts: --online 100 --fixed-rate 200 --warmup-seconds 2 --fixed-seconds 5 --start-rate 200 --rate-factor 1.5 --refine-steps 2
                     --step-seconds 3 --max-rate 100000 --latency-limit-ms 100
          federation: as throughput, plus --peer-port --peer-tls-port --peer-domain: online/2 users log in on each
                     server and every message goes from a user of the first to a user of the second (server to server)
          offline:   --messages 1000 --receivers 20 --senders 10
          mam-page:  --queries 200   (user 0 asks for its newest 50 archived messages, one query after another)
        prints one JSON line with the results on stdout; progress goes to stderr.
        """;

    public static async Task<ResultLine> RunAsync(BenchOptions o, CancellationToken ct = default)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromSeconds(o.MaxSeconds));
        try
        {
            return o.Scenario switch
            {
                "register" => await RegisterScenario.RunAsync(o, limit.Token),
                "login" => await LoginScenario.RunAsync(o, limit.Token),
                "idle" => await IdleScenario.RunAsync(o, limit.Token),
                "throughput" => await ThroughputScenario.RunAsync(o, receipts: false, limit.Token),
                "receipts" => await ThroughputScenario.RunAsync(o, receipts: true, limit.Token),
                "federation" => await ThroughputScenario.RunAsync(o, receipts: false, limit.Token, federation: true),
                "offline" => await OfflineScenario.RunAsync(o, limit.Token),
                "mam-page" => await MamPageScenario.RunAsync(o, limit.Token),
                _ => new ResultLine(o.Scenario, o.Server).Add("error", "unknown scenario"),
            };
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested)
        {
            return new ResultLine(o.Scenario, o.Server).Add("error", $"time limit of {o.MaxSeconds} s reached");
        }
    }
}
