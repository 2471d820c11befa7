using System.Collections.Concurrent;
using System.Diagnostics;

namespace Xmpp.Bench.Scenarios;

/// Creates accounts u0..u{Users-1} by XEP-0077 in-band registration; existing accounts count as done. Accounts that
/// failed (a slow server times out under many parallel registrations) are tried again, at a tenth of the concurrency,
/// twice at most, so later scenarios find every account.
public static class RegisterScenario
{
    public static async Task<ResultLine> RunAsync(BenchOptions o, CancellationToken ct)
    {
        var sources = new SourceAddresses(o.Host, o.SpreadSources);
        string? firstError = null;
        var sw = Stopwatch.StartNew();
        IReadOnlyCollection<int> todo = Enumerable.Range(0, o.Users).ToList();
        int retried = 0, attempt = 0;
        for (int pass = 0; pass < 3 && todo.Count > 0; pass++)
        {
            if (pass > 0) retried += todo.Count;
            var failed = new ConcurrentBag<int>();
            await Parallel.ForEachAsync(todo,
                new ParallelOptions { MaxDegreeOfParallelism = pass == 0 ? o.Concurrency : Math.Max(1, o.Concurrency / 10), CancellationToken = ct },
                async (i, token) =>
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                    timeout.CancelAfter(TimeSpan.FromSeconds(o.LoginTimeoutSeconds * (pass + 1)));
                    try
                    {
                        await BenchClient.RegisterAsync(o.Target, sources.For(Interlocked.Increment(ref attempt)), o.UserName(i), o.Password, timeout.Token);
                    }
                    catch (Exception e) when (!token.IsCancellationRequested)
                    {
                        failed.Add(i);
                        Interlocked.CompareExchange(ref firstError, $"{o.UserName(i)}: {e.Message}", null);
                    }
                });
            todo = failed.ToList();
        }
        var r = new ResultLine("register", o.Server).Add("accounts", o.Users).Add("failures", todo.Count).Add("retried", retried)
            .Add("seconds", sw.Elapsed.TotalSeconds).Add("accounts_per_s", o.Users / sw.Elapsed.TotalSeconds);
        if (firstError is not null) r.Add("first_error", firstError);
        return r;
    }
}
