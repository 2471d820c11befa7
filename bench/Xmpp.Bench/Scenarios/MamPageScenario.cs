using System.Diagnostics;
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Bench.Scenarios;

/// (e) The latest page of a large archive: user 0 (seeded beforehand with many archived messages, see
/// bench/compare.sh --storage) asks Queries times, one after another, for its newest 50 messages (XEP-0313 with
/// XEP-0059 &lt;before/&gt;), as a client opening a conversation does. Time per page = from sending the query to the
/// IQ result, which follows the 50 result messages on the stream; each page must hold 50 results.
public static class MamPageScenario
{
    private const int PageSize = 50;

    public static async Task<ResultLine> RunAsync(BenchOptions o, CancellationToken ct)
    {
        var r = new ResultLine("mam-page", o.Server).Add("queries", o.Queries).Add("page", PageSize);
        await using var client = await BenchClient.LoginAsync(o.Target, null, o.UserName(0), o.Password, "archive", presence: false, ct);
        var results = 0;
        string? count = null;
        TaskCompletionSource<Element>? answer = null;
        client.OnStanza = (_, e) =>
        {
            if (e.Name == "message" && e.Child("result", Ns.Mam) is not null) Interlocked.Increment(ref results);
            else if (e.Name == "iq") answer?.TrySetResult(e);
        };
        var times = new List<double>(o.Queries);
        var shortPages = 0;
        // The first few warm the connection, the JIT and the database's caches; they are not counted.
        const int warmup = 5;
        for (var q = 0; q < o.Queries + warmup; q++)
        {
            answer = new TaskCompletionSource<Element>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref results, 0);
            var id = string.Create(CultureInfo.InvariantCulture, $"page{q}");
            var query = new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("id", id)
                .Add(new Element("query", Ns.Mam).SetAttr("queryid", id)
                    .Add(new Element("set", Ns.Rsm).Add(new Element("max", Ns.Rsm).SetText("50")).Add(new Element("before", Ns.Rsm))));
            var clock = Stopwatch.StartNew();
            await client.SendAsync(query, ct);
            var iq = await answer.Task.WaitAsync(ct);
            var ms = clock.Elapsed.TotalMilliseconds;
            if (iq.Attr("type") != "result")
                return r.Add("error", "the query failed: " + iq);
            count ??= iq.Child("fin", Ns.Mam)?.Child("set", Ns.Rsm)?.ChildText("count", Ns.Rsm);
            if (q < warmup) continue;
            times.Add(ms);
            if (Volatile.Read(ref results) != PageSize) shortPages++;
        }
        times.Sort();
        double At(double p) => times[Math.Min(times.Count - 1, (int)Math.Ceiling(p * times.Count) - 1)];
        Sessions.Log($"mam-page: {times.Count} pages of the newest {PageSize} out of {count}: p50 {At(0.5):F2} ms, p99 {At(0.99):F2} ms");
        return r.Add("archived", long.TryParse(count, CultureInfo.InvariantCulture, out var n) ? n : -1)
            .Add("p50_ms", Math.Round(At(0.5), 3)).Add("p99_ms", Math.Round(At(0.99), 3)).Add("mean_ms", Math.Round(times.Average(), 3))
            .Add("short_pages", shortPages);
    }
}
