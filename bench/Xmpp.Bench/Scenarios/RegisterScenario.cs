using System.Diagnostics;

namespace Xmpp.Bench.Scenarios;

/// Creates accounts u0..u{Users-1} by XEP-0077 in-band registration; existing accounts count as done.
public static class RegisterScenario
{
    public static async Task<ResultLine> RunAsync(BenchOptions o, CancellationToken ct)
    {
        var sources = new SourceAddresses(o.Host, o.SpreadSources);
        int failures = 0;
        string? firstError = null;
        var sw = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, o.Users),
            new ParallelOptions { MaxDegreeOfParallelism = o.Concurrency, CancellationToken = ct },
            async (i, token) =>
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                timeout.CancelAfter(TimeSpan.FromSeconds(o.LoginTimeoutSeconds));
                try { await BenchClient.RegisterAsync(o.Target, sources.For(i), o.UserName(i), o.Password, timeout.Token); }
                catch (Exception e) when (!token.IsCancellationRequested)
                {
                    Interlocked.Increment(ref failures);
                    Interlocked.CompareExchange(ref firstError, $"{o.UserName(i)}: {e.Message}", null);
                }
            });
        var r = new ResultLine("register", o.Server).Add("accounts", o.Users).Add("failures", failures)
            .Add("seconds", sw.Elapsed.TotalSeconds).Add("accounts_per_s", o.Users / sw.Elapsed.TotalSeconds);
        if (firstError is not null) r.Add("first_error", firstError);
        return r;
    }
}
