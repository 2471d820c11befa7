using System.Diagnostics;

namespace Xmpp.Bench.Scenarios;

/// (a) Login rate: Sessions logins (TLS, SCRAM-SHA-1, bind, initial presence), Concurrency at a time, each closed
/// once its presence is sent; sessions per second counts completed logins over the wall time of the whole run.
/// With --server-pid it also reports the server's CPU time per login: the generator shares the machine's cores, so the
/// wall-clock rate depends on the generator's own cost too, while CPU per login is the server's alone.
public static class LoginScenario
{
    public static async Task<ResultLine> RunAsync(BenchOptions o, CancellationToken ct)
    {
        var sources = new SourceAddresses(o.Host, o.SpreadSources);
        int failures = 0, done = 0;
        string? firstError = null;
        double cpu0 = o.ServerPid > 0 ? ProcessStats.CpuSeconds(o.ServerPid) : 0;
        var sw = Stopwatch.StartNew();
        var latencies = new LatencyRecorder(o.Sessions);
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, o.Sessions),
                new ParallelOptions { MaxDegreeOfParallelism = o.Concurrency, CancellationToken = ct },
                async (i, token) =>
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                    timeout.CancelAfter(TimeSpan.FromSeconds(o.LoginTimeoutSeconds));
                    long start = Stopwatch.GetTimestamp();
                    try
                    {
                        var c = await BenchClient.LoginAsync(o.Target, sources.For(i), o.UserName(i % o.Users), o.Password,
                            "login" + i, presence: true, timeout.Token);
                        latencies.Record((long)Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                        Interlocked.Increment(ref done);
                        await c.DisposeAsync();
                    }
                    catch (Exception e) when (!token.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref failures);
                        Interlocked.CompareExchange(ref firstError, $"{o.UserName(i % o.Users)}: {e.Message}", null);
                    }
                });
        }
        catch (OperationCanceledException) { }
        var seconds = sw.Elapsed.TotalSeconds;
        double serverCpu = o.ServerPid > 0 ? ProcessStats.CpuSeconds(o.ServerPid) - cpu0 : double.NaN;
        var p = latencies.PercentilesMs(0.5, 0.99);
        var r = new ResultLine("login", o.Server).Add("sessions", done).Add("failures", failures)
            .Add("seconds", seconds).Add("sessions_per_s", done / seconds)
            .Add("login_p50_ms", p[0]).Add("login_p99_ms", p[1]).Add("concurrency", o.Concurrency);
        if (o.ServerPid > 0 && done > 0) r.Add("server_cpu_ms_per_login", serverCpu * 1000 / done);
        if (firstError is not null) r.Add("first_error", firstError);
        return r;
    }
}
