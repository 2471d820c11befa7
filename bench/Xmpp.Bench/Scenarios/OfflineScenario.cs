using System.Diagnostics;
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Bench.Scenarios;

/// (d) Offline spool: Senders online users send Messages chat messages spread evenly over Receivers users who are
/// offline (accounts u{Users-Receivers}..), then the receivers log in. Store rate = messages over the time until every
/// sender's closing ping is answered (the server has taken every message); drain rate = messages over the time from
/// the first receiver login to the last message received. Every message carries a run tag and sequence number and
/// must arrive exactly once.
public static class OfflineScenario
{
    public static async Task<ResultLine> RunAsync(BenchOptions o, CancellationToken ct)
    {
        if (o.Users < o.Senders + o.Receivers) throw new ArgumentException("--users must be at least --senders + --receivers");
        var sources = new SourceAddresses(o.Host, o.SpreadSources);
        string tag = Convert.ToHexString(BitConverter.GetBytes(Random.Shared.Next()));
        int firstReceiver = o.Users - o.Receivers;
        var r = new ResultLine("offline", o.Server).Add("messages", o.Messages).Add("receivers", o.Receivers).Add("senders", o.Senders);

        // Messages from earlier, interrupted runs would be drained too: they are counted as stale, never as ours.
        var seen = new int[o.Messages];
        var expected = new int[o.Receivers];
        for (int m = 0; m < o.Messages; m++) expected[m % o.Receivers]++;
        var got = new int[o.Receivers];
        int stale = 0, duplicates = 0, received = 0;
        long lastArrival = 0;

        var (senders, sendFailures, firstError) = await Sessions.LoginManyAsync(o, sources, o.Senders,
            i => o.UserName(i), i => "spool", null, presence: true, ct);
        var live = senders.Where(s => s is not null).ToArray();
        if (sendFailures > 0 || live.Length == 0)
        {
            await Sessions.CloseAllAsync(senders);
            return r.Add("failures", sendFailures).Add("error", firstError ?? "no sender online");
        }

        // Store: each sender writes its share in batches of 50 stanzas per flush, then pings the server.
        var store = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, live.Length), new ParallelOptions { MaxDegreeOfParallelism = live.Length, CancellationToken = ct },
            async (k, token) =>
            {
                var batch = new List<Element>(50);
                for (int m = k; m < o.Messages; m += live.Length)
                {
                    int to = firstReceiver + m % o.Receivers;
                    batch.Add(new Element("message", Ns.Client).SetAttr("to", o.Target.Jid(o.UserName(to))).SetAttr("type", "chat")
                        .SetAttr("id", string.Create(CultureInfo.InvariantCulture, $"o{tag}-{m}"))
                        .Add(new Element("body", Ns.Client).SetText(string.Create(CultureInfo.InvariantCulture, $"{tag}:{m}"))));
                    if (batch.Count == 50) { await live[k]!.SendBatchAsync(batch, token); batch.Clear(); }
                }
                if (batch.Count > 0) await live[k]!.SendBatchAsync(batch, token);
                await live[k]!.PingServerAsync("spooled", token);
            });
        double storeSeconds = store.Elapsed.TotalSeconds;
        await Sessions.CloseAllAsync(senders);
        Sessions.Log($"offline: {o.Messages} messages stored in {storeSeconds:F2} s; receivers log in");

        // Drain: receivers log in with initial presence, which triggers the spool's delivery (XEP-0160 §3).
        var drain = Stopwatch.StartNew();
        Action<int, BenchClient> count = (i, c) => c.OnStanza = (_, e) =>
            {
                if (e.Name != "message") return;
                var body = e.ChildText("body", Ns.Client);
                int colon = body?.IndexOf(':') ?? -1;
                if (body is null || colon < 0 || body[..colon] != tag || !int.TryParse(body.AsSpan(colon + 1), out int m)
                    || m < 0 || m >= o.Messages || m % o.Receivers != i)
                {
                    Interlocked.Increment(ref stale);
                    return;
                }
                if (Interlocked.Increment(ref seen[m]) > 1) { Interlocked.Increment(ref duplicates); return; }
                Interlocked.Increment(ref got[i]);
                Interlocked.Increment(ref received);
                Interlocked.Exchange(ref lastArrival, drain.ElapsedTicks);
            };
        var (receivers, recvFailures, recvError) = await Sessions.LoginManyAsync(o, sources, o.Receivers,
            i => o.UserName(firstReceiver + i), i => "drain", count, presence: true, ct, addressOffset: o.Senders);
        // A login that timed out on a busy server gets one more try, so its spool is still checked.
        var retry = Enumerable.Range(0, o.Receivers).Where(i => receivers[i] is null).ToList();
        if (retry.Count > 0)
        {
            var again = await Sessions.LoginManyAsync(o, sources, retry.Count, k => o.UserName(firstReceiver + retry[k]), _ => "drain",
                (k, c) => count(retry[k], c), presence: true, ct, addressOffset: o.Senders + o.Receivers);
            for (int k = 0; k < retry.Count; k++) receivers[retry[k]] = again.Clients[k];
            recvFailures = again.Failures;
        }
        int loggedOut = 0;
        for (int i = 0; i < o.Receivers; i++) if (receivers[i] is null) loggedOut += expected[i];
        var deadline = Stopwatch.StartNew();
        while (Volatile.Read(ref received) < o.Messages - loggedOut && deadline.Elapsed < TimeSpan.FromSeconds(Math.Max(10, o.MaxSeconds / 2.0)))
            await Task.Delay(20, ct);
        double drainSeconds = Volatile.Read(ref lastArrival) / (double)Stopwatch.Frequency;
        // Anything arriving a little later would be a duplicate: give it a moment to show up.
        await Task.Delay(1000, ct);
        await Sessions.CloseAllAsync(receivers);

        int missing = o.Messages - received;
        r.Add("failures", sendFailures + recvFailures).Add("store_seconds", storeSeconds).Add("store_per_s", o.Messages / storeSeconds)
            .Add("drain_seconds", drainSeconds).Add("drain_per_s", drainSeconds > 0 ? received / drainSeconds : 0)
            .Add("received", received).Add("missing", missing).Add("missing_for_failed_logins", loggedOut).Add("duplicates", duplicates).Add("stale", stale)
            .Add("exactly_once", missing == 0 && duplicates == 0);
        if (recvError is not null) r.Add("first_error", recvError);
        return r;
    }
}
