using System.Diagnostics;
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Bench.Scenarios;

/// (c) 1:1 throughput and latency, and (e) the same with XEP-0184 receipts and XEP-0333 markers flowing back.
/// Online users send chat messages to random other online users (bare JID). The body carries the step, a sequence
/// number and the send time, so latency is measured end to end and every message is checked to arrive exactly once.
/// First a fixed moderate rate gives p50/p99/p999; then the rate rises by RateFactor per step until a step is not
/// sustained (sent below 95 % of the target, anything lost or duplicated, or p99 at or above LatencyLimitMs; a step
/// missing only on time gets one retry). When the start rate itself is not sustained the rate steps down instead.
/// Federation: half the users log in on the first server, half (same user names) on the peer server, and every
/// message goes from a user of the first to one of the peer, so it crosses the servers' s2s link.
public sealed class ThroughputScenario
{
    private readonly BenchOptions _o;
    private readonly bool _receipts;
    private readonly bool _federation;
    private BenchClient[] _online = [];
    private BenchClient[] _receivers = [];
    private Step _step = new(0, 0);

    private ThroughputScenario(BenchOptions o, bool receipts, bool federation)
    {
        _o = o;
        _receipts = receipts;
        _federation = federation;
    }

    public static Task<ResultLine> RunAsync(BenchOptions o, bool receipts, CancellationToken ct, bool federation = false) =>
        new ThroughputScenario(o, receipts, federation).RunAsync(ct);

    /// Counters of one step; messages of other steps arriving late are only counted.
    private sealed class Step(int id, int messages)
    {
        public readonly int Id = id;
        public readonly int[] Seen = new int[messages];
        public readonly long[] SentAt = new long[messages];
        public readonly LatencyRecorder Latency = new(Math.Max(1, messages));
        public readonly LatencyRecorder ReceiptRtt = new(Math.Max(1, messages));
        public int Received, Duplicates, Receipts, Markers, Bounced;
        /// Neither received nor answered with an error: a bounce (RFC 6120 §8.3, e.g. resource-constraint from a full
        /// s2s queue) is a clear answer, counted apart, not a silent loss.
        public int Lost => SentAt.Length - Volatile.Read(ref Received) - Volatile.Read(ref Bounced);
        public double SendSeconds;
    }

    private const double MinRate = 10;
    private int _late;
    // Messages of every step so far (warm-up, fixed, ramp, refinement), to turn a process's CPU time into a cost per message.
    private long _messages;

    private async Task<ResultLine> RunAsync(CancellationToken ct)
    {
        var name = _federation ? "federation" : _receipts ? "receipts" : "throughput";
        var total = Stopwatch.StartNew();
        var sources = new SourceAddresses(_o.Host, _o.SpreadSources);
        int here = _federation ? Math.Max(1, _o.Online / 2) : _o.Online;
        var (clients, failures, firstError) = await Sessions.LoginManyAsync(_o, sources, here,
            i => _o.UserName(i), i => "tp", (_, c) => c.OnStanza = OnStanza, presence: true, ct);
        _online = clients.Where(c => c is not null).ToArray()!;
        _receivers = _online;
        if (_federation)
        {
            var (peers, peerFailures, peerError) = await Sessions.LoginManyAsync(_o, sources, Math.Max(1, _o.Online - here),
                i => _o.UserName(i), i => "tp", (_, c) => c.OnStanza = OnStanza, presence: true, ct, addressOffset: here,
                target: _o.PeerTarget);
            _receivers = peers.Where(c => c is not null).ToArray()!;
            failures += peerFailures;
            firstError ??= peerError;
        }
        var r = new ResultLine(name, _o.Server).Add("online", _online.Length + (_federation ? _receivers.Length : 0))
            .Add("login_failures", failures);
        if (firstError is not null) r.Add("first_error", firstError);
        try
        {
            if (_online.Length < 2 || _receivers.Length < 1) return r.Add("error", "fewer than two users online");
            // Let initial presence and anything the server pushes after login settle.
            await Task.Delay(500, ct);

            // An unmeasured step at the fixed rate first: the first messages through a fresh generator process (and a
            // .NET server whose message path is not yet compiled) pay one-time start-up costs that are not latency a
            // running server shows. Every server gets the same warm-up; what it loses is still reported.
            Step? warm = null;
            if (_o.WarmupSeconds > 0)
            {
                warm = await RunStepAsync(1, _o.FixedRate, _o.WarmupSeconds, ct);
                await Task.Delay(300, ct);
            }
            var fixedStep = await RunStepAsync(2, _o.FixedRate, _o.FixedSeconds, ct);
            var p = fixedStep.Latency.PercentilesMs(0.5, 0.99, 0.999);
            r.Add("fixed_rate", _o.FixedRate).Add("fixed_sent", fixedStep.SentAt.Length).Add("p50_ms", p[0]).Add("p99_ms", p[1]).Add("p999_ms", p[2])
                .Add("fixed_lost", fixedStep.Lost).Add("fixed_bounced", fixedStep.Bounced).Add("fixed_duplicates", fixedStep.Duplicates)
                .Add("warmup_lost", warm?.Lost ?? 0).Add("warmup_duplicates", warm?.Duplicates ?? 0);
            if (_receipts)
            {
                var rp = fixedStep.ReceiptRtt.PercentilesMs(0.5, 0.99);
                r.Add("receipt_rtt_p50_ms", rp[0]).Add("receipt_rtt_p99_ms", rp[1])
                    .Add("fixed_receipts_lost", fixedStep.SentAt.Length - fixedStep.Receipts)
                    .Add("fixed_markers_lost", fixedStep.SentAt.Length - fixedStep.Markers);
            }

            double best = 0, bestP99 = double.NaN, rate = _o.StartRate;
            int id = 3, rampLost = 0, rampBounced = 0;
            string stop = "max-rate";
            bool retried = false, descending = false;
            while (rate <= _o.MaxRate)
            {
                if (total.Elapsed.TotalSeconds + _o.StepSeconds * 3 + 5 > _o.MaxSeconds) { stop = "time"; break; }
                await Task.Delay(300, ct);
                var s = await RunStepAsync(id++, rate, _o.StepSeconds, ct);
                var (ok, why, achieved, p99) = Judge(s, rate);
                rampLost += s.Lost;
                rampBounced += s.Bounced;
                Sessions.Log($"{name} {rate:F0}/s: sent {achieved:F0}/s, received {s.Received}/{s.SentAt.Length}{(s.Bounced > 0 ? $", bounced {s.Bounced}" : "")}, p99 {p99:F1} ms{(ok ? "" : " -> " + why)}");
                if (!ok && !retried && why is "p99" or "sender-behind")
                {
                    // Other processes share the CPU: a single noisy step gets one more try before it counts.
                    retried = true;
                    continue;
                }
                if (!ok && best == 0 && rate / _o.RateFactor >= MinRate)
                {
                    // Not even the start rate holds: step down to find the rate that does.
                    retried = false;
                    descending = true;
                    rate /= _o.RateFactor;
                    continue;
                }
                if (!ok)
                {
                    stop = why;
                    if (best > 0)
                    {
                        var refined = await RefineAsync(rate / _o.RateFactor, rate, best, bestP99, () => id++, total, ct);
                        (best, bestP99) = (refined.Best, refined.P99);
                        rampLost += refined.Lost;
                    }
                    break;
                }
                retried = false;
                best = achieved;
                bestP99 = p99;
                if (descending) { stop = "start-rate-too-high"; break; }
                rate *= _o.RateFactor;
            }
            r.Add("max_sustained_rate", best).Add("p99_at_max_ms", bestP99).Add("stop_reason", stop).Add("late", _late)
                .Add("ramp_lost", rampLost).Add("ramp_bounced", rampBounced).Add("messages", _messages);
            return r;
        }
        catch (OperationCanceledException)
        {
            return r.Add("error", "time limit");
        }
        finally
        {
            await Sessions.CloseAllAsync(_federation ? _online.Concat(_receivers) : _online);
        }
    }

    /// The ramp's factor is coarse (1.5 by default: a third of the rate between steps); between the last rate that
    /// held and the first that did not, a few geometric bisection steps narrow the maximum down (two steps: ~11 %).
    private async Task<(double Best, double P99, int Lost)> RefineAsync(double held, double failed, double best, double bestP99, Func<int> nextId,
        Stopwatch total, CancellationToken ct)
    {
        int lost = 0;
        for (int i = 0; i < _o.RefineSteps; i++)
        {
            if (total.Elapsed.TotalSeconds + _o.StepSeconds * 2 + 5 > _o.MaxSeconds) break;
            double rate = Math.Sqrt(held * failed);
            await Task.Delay(300, ct);
            var s = await RunStepAsync(nextId(), rate, _o.StepSeconds, ct);
            var (ok, why, achieved, p99) = Judge(s, rate);
            lost += s.Lost;
            Sessions.Log($"refine {rate:F0}/s: sent {achieved:F0}/s, received {s.Received}/{s.SentAt.Length}{(s.Bounced > 0 ? $", bounced {s.Bounced}" : "")}, p99 {p99:F1} ms{(ok ? "" : " -> " + why)}");
            if (ok)
            {
                held = rate;
                if (achieved > best) (best, bestP99) = (achieved, p99);
            }
            else failed = rate;
        }
        return (best, bestP99, lost);
    }

    private (bool Ok, string Why, double Achieved, double P99) Judge(Step s, double rate)
    {
        double achieved = s.SentAt.Length / Math.Max(1e-9, s.SendSeconds);
        double p99 = s.Latency.PercentilesMs(0.99)[0];
        if (achieved < 0.95 * rate) return (false, "sender-behind", achieved, p99);
        if (s.Lost > 0) return (false, "lost", achieved, p99);
        if (s.Bounced > 0) return (false, "bounced", achieved, p99);
        if (s.Duplicates > 0) return (false, "duplicates", achieved, p99);
        if (_receipts && (s.Receipts < s.SentAt.Length || s.Markers < s.SentAt.Length)) return (false, "receipts-lost", achieved, p99);
        if (!(p99 < _o.LatencyLimitMs)) return (false, "p99", achieved, p99);
        return (true, "", achieved, p99);
    }

    private async Task<Step> RunStepAsync(int id, double rate, double seconds, CancellationToken ct)
    {
        int n = Math.Max(1, (int)(rate * seconds));
        var s = new Step(id, n);
        _messages += n;
        Volatile.Write(ref _step, s);
        var pending = new List<Task>(n);
        var rnd = new Random(id);
        var sw = Stopwatch.StartNew();
        int sent = 0;
        while (sent < n)
        {
            ct.ThrowIfCancellationRequested();
            int due = (int)Math.Min(n, rate * sw.Elapsed.TotalSeconds) + 1;
            for (; sent < Math.Min(due, n); sent++)
            {
                if (_federation)
                {
                    pending.Add(Send(s, sent, _online[rnd.Next(_online.Length)], _receivers[rnd.Next(_receivers.Length)], ct));
                    continue;
                }
                int a = rnd.Next(_online.Length), b = rnd.Next(_online.Length - 1);
                if (b >= a) b++;
                pending.Add(Send(s, sent, _online[a], _online[b], ct));
            }
            if (sent < n) await Task.Delay(1, ct);
        }
        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(30), ct);
        // Achieved rate: messages over the time until the last one was written to its socket.
        s.SendSeconds = sw.Elapsed.TotalSeconds;
        // Wait for everything to arrive, bounded: what is missing after the grace period counts as lost.
        var grace = Stopwatch.StartNew();
        while (grace.Elapsed < TimeSpan.FromSeconds(3) && !Complete(s)) await Task.Delay(10, ct);
        return s;
    }

    private bool Complete(Step s) => Volatile.Read(ref s.Received) + Volatile.Read(ref s.Bounced) >= s.SentAt.Length
        && (!_receipts || (Volatile.Read(ref s.Receipts) >= s.SentAt.Length && Volatile.Read(ref s.Markers) >= s.SentAt.Length));

    private Task Send(Step s, int seq, BenchClient from, BenchClient to, CancellationToken ct)
    {
        long now = Stopwatch.GetTimestamp();
        s.SentAt[seq] = now;
        var m = new Element("message", Ns.Client).SetAttr("to", to.FullJid[..to.FullJid.IndexOf('/')]).SetAttr("type", "chat")
            .SetAttr("id", string.Create(CultureInfo.InvariantCulture, $"b{s.Id}-{seq}"))
            .Add(new Element("body", Ns.Client).SetText(string.Create(CultureInfo.InvariantCulture, $"{s.Id}:{seq}:{now}")));
        if (_receipts)
            m.Add(new Element("request", Ns.Receipts), new Element("markable", Ns.ChatMarkers));
        return from.SendAsync(m, ct);
    }

    private void OnStanza(BenchClient client, Element e)
    {
        if (e.Name != "message") return;
        if (e.Attr("type") == "error")
        {
            if (TryParseId(e.Attr("id"), out int bouncedStep, out int bouncedSeq))
            {
                var b = Volatile.Read(ref _step);
                if (bouncedStep == b.Id && bouncedSeq < b.SentAt.Length) Interlocked.Increment(ref b.Bounced);
                else Interlocked.Increment(ref _late);
            }
            return;
        }
        var body = e.ChildText("body", Ns.Client);
        if (body is not null)
        {
            OnMessage(client, e, body);
            return;
        }
        if (!_receipts) return;
        var receipt = e.Child("received", Ns.Receipts);
        var marker = e.Child("displayed", Ns.ChatMarkers);
        var ack = receipt ?? marker;
        if (ack is null || !TryParseId(ack.Attr("id"), out int stepId, out int seq)) return;
        var s = Volatile.Read(ref _step);
        if (stepId != s.Id || seq >= s.SentAt.Length) { Interlocked.Increment(ref _late); return; }
        if (receipt is not null)
        {
            s.ReceiptRtt.Record((long)Stopwatch.GetElapsedTime(s.SentAt[seq]).TotalMicroseconds);
            Interlocked.Increment(ref s.Receipts);
        }
        else Interlocked.Increment(ref s.Markers);
    }

    private void OnMessage(BenchClient client, Element e, string body)
    {
        var parts = body.Split(':');
        if (parts.Length != 3 || !int.TryParse(parts[0], out int stepId) || !int.TryParse(parts[1], out int seq)
            || !long.TryParse(parts[2], out long sentAt)) return;
        var s = Volatile.Read(ref _step);
        if (stepId != s.Id || seq >= s.Seen.Length) { Interlocked.Increment(ref _late); }
        else if (Interlocked.Increment(ref s.Seen[seq]) > 1) Interlocked.Increment(ref s.Duplicates);
        else
        {
            s.Latency.Record((long)Stopwatch.GetElapsedTime(sentAt).TotalMicroseconds);
            Interlocked.Increment(ref s.Received);
        }
        if (_receipts && e.Attr("from") is { } from && e.Attr("id") is { } id)
        {
            // XEP-0184 §5 and XEP-0333 §4: a receipt and a displayed marker back to the sender's full JID.
            var received = new Element("message", Ns.Client).SetAttr("to", from).SetAttr("id", "r" + id)
                .Add(new Element("received", Ns.Receipts).SetAttr("id", id));
            var displayed = new Element("message", Ns.Client).SetAttr("to", from).SetAttr("type", "chat").SetAttr("id", "d" + id)
                .Add(new Element("displayed", Ns.ChatMarkers).SetAttr("id", id));
            _ = client.SendBatchAsync([received, displayed]);
        }
    }

    private static bool TryParseId(string? id, out int step, out int seq)
    {
        step = seq = 0;
        if (id is null || id.Length < 2 || id[0] != 'b') return false;
        int dash = id.IndexOf('-');
        return dash > 1 && int.TryParse(id.AsSpan(1, dash - 1), out step) && int.TryParse(id.AsSpan(dash + 1), out seq);
    }
}
