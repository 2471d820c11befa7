using System.Diagnostics;

namespace Xmpp.Bench.Scenarios;

/// (b) Idle sessions: hold Sessions authenticated TLS sessions and read the server's RSS growth per session and
/// its CPU use while nobody talks, from /proc of --server-pid (and its child processes).
public static class IdleScenario
{
    public static async Task<ResultLine> RunAsync(BenchOptions o, CancellationToken ct)
    {
        var sources = new SourceAddresses(o.Host, o.SpreadSources);
        long rssBefore = o.ServerPid > 0 ? ProcessStats.RssBytes(o.ServerPid) : 0;
        var sw = Stopwatch.StartNew();
        var (clients, failures, firstError) = await Sessions.LoginManyAsync(o, sources, o.Sessions,
            i => o.UserName(i % o.Users), i => o.ResourcePrefix + i, null, presence: true, ct);
        double openSeconds = sw.Elapsed.TotalSeconds;
        int open = clients.Count(c => c is not null);
        Sessions.Log($"{open} sessions open in {openSeconds:F1} s, {failures} failures; settling");
        try
        {
            // Let the server finish the presence broadcasts and settle before reading its memory.
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            long rssAfter = o.ServerPid > 0 ? ProcessStats.RssBytes(o.ServerPid) : 0;
            double cpu0 = o.ServerPid > 0 ? ProcessStats.CpuSeconds(o.ServerPid) : 0;
            var window = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(o.IdleSeconds), ct);
            double cpu1 = o.ServerPid > 0 ? ProcessStats.CpuSeconds(o.ServerPid) : 0;
            int stillOpen = clients.Count(c => c is not null && !c.Closed.IsCompleted);
            var r = new ResultLine("idle", o.Server).Add("client", o.Client).Add("requested", o.Sessions).Add("sessions", open).Add("failures", failures + (open - stillOpen))
                .Add("open_seconds", openSeconds).Add("rss_before_mb", rssBefore / 1048576.0).Add("rss_after_mb", rssAfter / 1048576.0)
                .Add("rss_per_session_kb", open == 0 ? double.NaN : (rssAfter - rssBefore) / 1024.0 / open)
                .Add("idle_cpu_percent", (cpu1 - cpu0) / window.Elapsed.TotalSeconds * 100);
            if (o.Client == "messenger")
            {
                r.Add("start_iq_errors", clients.Sum(c => c?.StartErrors ?? 0));
                if (clients.FirstOrDefault(c => c?.FirstStartError is not null)?.FirstStartError is { } error) r.Add("first_start_iq_error", error);
            }
            if (firstError is not null) r.Add("first_error", firstError);
            return r;
        }
        finally
        {
            await Sessions.CloseAllAsync(clients);
        }
    }
}
