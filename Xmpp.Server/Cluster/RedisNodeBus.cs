using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Cluster;

/// INodeBus on Redis pub/sub: one channel per node (xmpp:node:{id}); per destination node one bounded queue drained by
/// one writer loop that publishes what has gathered as one batch, so order per node pair is kept and a broadcast to
/// many sessions on one node costs one publish per batch. Frames: &lt;f k='d|r|q|a|k' n='sender' t='target' r='request id'
/// q='request kind' s='sequence' d='destination token'&gt;stanza&lt;/f&gt; (deliver, route, request, answer, ack).
/// Deliver and route frames are numbered per destination (s) and kept until the destination acknowledges them (one k
/// frame per batch it has handled): when the destination dies, the frames it never handled, whether Redis had no
/// subscriber for them or they sat unread in a frozen or killed process, are routed again here once the directory no
/// longer lists its sessions (a message then goes to the offline spool). The lease and failure detection are in
/// RedisNodeBus.Lease.cs.
public sealed partial class RedisNodeBus : INodeBus, IHostedService, IAsyncDisposable
{
    private const int QueueLimit = 100_000;
    private const int BatchBytes = 256 * 1024;

    private readonly IConnectionMultiplexer _redis;
    private readonly ILogger _log;
    private readonly TimeSpan _lease;
    private readonly TimeSpan _membershipPeriod;
    private readonly ConcurrentDictionary<string, Outbox> _outboxes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Func<string, Element, ValueTask<Element?>>> _handlers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<long, (string Node, TaskCompletionSource<Element?> Answer)> _pending = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly XmppStreamParser _parser = new(ClusterXml.Limits);
    private ChannelMessageQueue? _inbox;
    private Task _reader = Task.CompletedTask, _renewer = Task.CompletedTask, _watcher = Task.CompletedTask;
    private long _requestSeq;

    public RedisNodeBus(IConnectionMultiplexer redis, ClusterOptions options, ILogger<RedisNodeBus> log)
    {
        _redis = redis;
        _log = log;
        _lease = TimeSpan.FromSeconds(options.LeaseSeconds);
        _membershipPeriod = TimeSpan.FromMilliseconds(options.MembershipCheckMilliseconds);
        LocalNode = options.NodeId;
    }

    public string LocalNode { get; }

    /// Receives deliver frames: the sender node, the full JID and the stanza. Set once at start by the directory.
    public Func<string, Jid, Element, ValueTask>? DeliverHandler { get; set; }

    /// Receives route frames: the sender node and the stanza. Set once at start by the router's side.
    public Func<string, Element, ValueTask>? RouteHandler { get; set; }

    /// Receives, after a node is down and its sessions are gone from the directory, the deliver and route frames it
    /// never acknowledged: the node, then each frame's kind (d or r), target and stanza, in the order they were sent.
    public Func<string, IReadOnlyList<(string Kind, string? Target, Element Stanza)>, ValueTask>? UnhandledHandler { get; set; }

    /// Deliver and route frames routed again here because their destination died without handling them; publishes
    /// that found no subscriber (before a retry or the node's end).
    public long Rerouted => Interlocked.Read(ref _rerouted);

    public long Unreceived => Interlocked.Read(ref _unreceived);

    private long _rerouted, _unreceived;

    /// Frames refused since start because this node did not hold its lease when they arrived.
    public long Fenced => Interlocked.Read(ref _fenced);

    private long _fenced;

    /// Publishes (batches) and frames sent since start: the ratio is how much batching saves.
    public long Batches => Interlocked.Read(ref _batches);

    public long FramesSent => Interlocked.Read(ref _framesSent);

    private long _batches, _framesSent;

    internal static RedisChannel ChannelOf(string node) => RedisChannel.Literal("xmpp:node:" + node);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_redis is ConnectionMultiplexer m) m.ConnectionRestored += OnConnectionRestored;
        _inbox = await _redis.GetSubscriber().SubscribeAsync(ChannelOf(LocalNode));
        await RegisterAsync();
        // Learn who is up before the first client binds, so its first stanzas can reach them.
        try { await WatchOnceAsync(); }
        catch (Exception e) when (e is RedisException or TimeoutException) { _log.LogWarning("Cluster membership check failed: {Error}", e.Message); }
        var ct = _stopping.Token;
        _reader = Task.Run(() => ReadLoopAsync(ct), CancellationToken.None);
        _renewer = Task.Run(() => RenewLoopAsync(ct), CancellationToken.None);
        _watcher = Task.Run(() => WatchLoopAsync(ct), CancellationToken.None);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping.IsCancellationRequested) return;
        _stopping.Cancel();
        if (_redis is ConnectionMultiplexer m) m.ConnectionRestored -= OnConnectionRestored;
        foreach (var node in _outboxes.Keys) DropOutbox(node);
        try { await Task.WhenAll(_renewer, _watcher).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken); }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException) { }
        // A clean stop hands the lease back at once: the others see this node down within a second, not a lease.
        if (_registered)
        {
            _registered = false;
            try
            {
                var db = _redis.GetDatabase();
                await db.ScriptEvaluateAsync("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                    [LeaseKey(LocalNode)], [_token]);
            }
            catch (Exception e) when (e is RedisException or TimeoutException) { _log.LogWarning("Cluster lease not released: {Error}", e.Message); }
        }
        if (_inbox is { } inbox)
        {
            try { await inbox.UnsubscribeAsync(); }
            catch (Exception e) when (e is RedisException or TimeoutException) { }
        }
        try { await _reader.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken); }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException) { }
        FailPendingRequests(null);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
    }

    // ---- Sending ----

    public bool Deliver(string node, Jid fullJid, Element stanza) => Send(node, "d", fullJid.ToString(), stanza);

    public void Route(string node, Element stanza) => Send(node, "r", null, stanza);

    public async Task<Element?> RequestAsync(string node, string kind, Element payload, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (node == LocalNode) return null;
        // A node that registered since the last membership check is asked all the same when its lease is in Redis: a
        // client resuming right after that node started must not be told its session is gone.
        if (!await IsAliveNowAsync(node)) return null;
        long id = Interlocked.Increment(ref _requestSeq);
        var answer = new TaskCompletionSource<Element?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = (node, answer);
        try
        {
            Enqueue(node, Encode("q", null, id, kind, payload));
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            linked.CancelAfter(timeout);
            using (linked.Token.Register(() => answer.TrySetResult(null)))
                return await answer.Task;
        }
        finally { _pending.TryRemove(id, out _); }
    }

    public void OnRequest(string kind, Func<string, Element, ValueTask<Element?>> handler)
    {
        if (!_handlers.TryAdd(kind, handler)) throw new InvalidOperationException($"cluster request kind {kind} already has a handler");
    }

    private byte[] Encode(string kind, string? target, long requestId, string? name, Element? stanza, long seq = 0, string? destination = null,
        string? origin = null)
    {
        var w = new ArrayBufferWriter<byte>(512);
        ClusterXml.Write(w, "f", [("k", kind), ("n", LocalNode), ("t", target),
            ("r", requestId == 0 ? null : requestId.ToString(CultureInfo.InvariantCulture)), ("q", name),
            ("s", seq == 0 ? null : seq.ToString(CultureInfo.InvariantCulture)), ("d", destination), ("o", origin)], stanza);
        return w.WrittenSpan.ToArray();
    }

    private Outbox OutboxOf(string node)
    {
        if (node == LocalNode) throw new InvalidOperationException("a frame for this node itself");
        return _outboxes.GetOrAdd(node, n => new Outbox(this, n, _alive.TryGetValue(n, out var token) ? token : null));
    }

    private void Enqueue(string node, byte[] frame)
    {
        var outbox = OutboxOf(node);
        if (_stopping.IsCancellationRequested) return;
        if (!outbox.Queue.Writer.TryWrite(frame))
            _log.LogWarning("Cluster link to {Node} is full ({Limit} frames queued): a frame was dropped", node, QueueLimit);
    }

    // Numbered and kept until acknowledged; numbered, kept and queued under one lock, so the queue is in number order.
    private void EnqueueTracked(string node, string kind, string? target, Element stanza)
    {
        var outbox = OutboxOf(node);
        if (_stopping.IsCancellationRequested) return;
        lock (outbox)
        {
            long seq = ++outbox.Seq;
            var frame = Encode(kind, target, 0, null, stanza, seq, outbox.Token, _token);
            if (outbox.Unacked.Count == 0) outbox.Progress = Stopwatch.GetTimestamp();
            if (outbox.Unacked.Count >= QueueLimit)
            {
                outbox.Unacked.Dequeue();
                if (outbox.Unacked.Count == QueueLimit - 1)
                    _log.LogWarning("Cluster link to {Node}: {Limit} frames unacknowledged; the oldest are no longer kept for a reroute", node, QueueLimit);
            }
            outbox.Unacked.Enqueue((seq, frame));
            if (!outbox.Queue.Writer.TryWrite(frame))
                _log.LogWarning("Cluster link to {Node} is full ({Limit} frames queued): a frame was dropped", node, QueueLimit);
        }
    }

    /// Completing the queue lets its loop publish what is already queued, then end; for a node that is down (gone:
    /// true) nothing more is published, and the frames it did not acknowledge are returned to be routed again.
    private List<byte[]> DropOutbox(string node, bool gone = false)
    {
        if (!_outboxes.TryRemove(node, out var outbox)) return [];
        lock (outbox)
        {
            outbox.Gone = gone;
            outbox.Queue.Writer.TryComplete();
            if (!gone) return [];
            var unacked = outbox.Unacked.Select(u => u.Frame).ToList();
            outbox.Unacked.Clear();
            return unacked;
        }
    }

    private void Acknowledged(string from, Element frame)
    {
        if (!_outboxes.TryGetValue(from, out var outbox) || frame.Attr("d") != outbox.Token
            || !long.TryParse(frame.Attr("r"), CultureInfo.InvariantCulture, out var upTo)) return;
        lock (outbox)
        {
            bool progress = false;
            while (outbox.Unacked.Count > 0 && outbox.Unacked.Peek().Seq <= upTo)
            {
                outbox.Unacked.Dequeue();
                progress = true;
            }
            if (progress) outbox.Progress = Stopwatch.GetTimestamp();
        }
    }

    /// Go-back-N: the destination asks for every frame from a number on (it missed that one: a frame Redis handed to a
    /// connection that broke before it read it is gone, and pub/sub keeps nothing). They are queued again in order;
    /// what arrives twice is skipped there. Frames no longer kept (over QueueLimit unacknowledged) cannot come back:
    /// the destination is told to go on after them.
    private void Resend(string from, Element frame)
    {
        if (!_outboxes.TryGetValue(from, out var outbox) || frame.Attr("d") != outbox.Token
            || !long.TryParse(frame.Attr("r"), CultureInfo.InvariantCulture, out var first)) return;
        lock (outbox)
        {
            // The destination asks again while the frames sent again are still on their way (a long queue under load):
            // one resend from one number per second, or every ask would queue all of them once more.
            if (outbox.ResentFrom == first && Stopwatch.GetElapsedTime(outbox.ResentAt) < ResendAgainAfter) return;
            outbox.ResentFrom = first;
            outbox.ResentAt = Stopwatch.GetTimestamp();
            ResendLocked(from, outbox, first);
        }
    }

    private static readonly TimeSpan ResendAgainAfter = TimeSpan.FromSeconds(1);

    private void ResendLocked(string node, Outbox outbox, long first)
    {
        long oldest = outbox.Unacked.Count > 0 ? outbox.Unacked.Peek().Seq : outbox.Seq + 1;
        if (oldest > first)
        {
            _log.LogWarning("Cluster link to {Node}: frames {First}-{Last} asked for again are no longer kept", node, first, oldest - 1);
            outbox.Queue.Writer.TryWrite(Encode("j", null, oldest - 1, null, null, 0, outbox.Token, _token));
        }
        int again = 0;
        foreach (var (seq, bytes) in outbox.Unacked)
            if (seq >= first && outbox.Queue.Writer.TryWrite(bytes)) again++;
        outbox.Progress = Stopwatch.GetTimestamp();
        Interlocked.Add(ref _resent, again);
    }

    /// Frames sent again since start, asked for by their destination.
    public long Resent => Interlocked.Read(ref _resent);

    private long _resent;

    // A destination that missed the last frames sent to it has nothing after them to notice the gap by: when frames have
    // had no acknowledgement for this long, a probe names the last one sent, and the destination acknowledges again or
    // asks for what it missed (run by the membership loop, every MembershipCheckMilliseconds). Nothing is sent twice
    // unless it was missed, so a destination that is only slow (acknowledgements late under load) gets no duplicates.
    private static readonly TimeSpan UnackedProbeAfter = TimeSpan.FromSeconds(2);

    internal void ProbeStale()
    {
        foreach (var (node, outbox) in _outboxes)
            lock (outbox)
                if (outbox.Unacked.Count > 0 && !outbox.Gone && Stopwatch.GetElapsedTime(outbox.Progress) >= UnackedProbeAfter)
                {
                    outbox.Queue.Writer.TryWrite(Encode("p", null, outbox.Seq, null, null, 0, outbox.Token, _token));
                    outbox.Progress = Stopwatch.GetTimestamp();
                }
    }

    // The frames a dead node did not acknowledge, handed to the router's side in the order they were sent.
    private async ValueTask RerouteAsync(string node, List<byte[]> frames)
    {
        if (frames.Count == 0 || UnhandledHandler is not { } handler) return;
        var parser = new XmppStreamParser(ClusterXml.Limits);
        var unhandled = new List<(string, string?, Element)>(frames.Count);
        foreach (var bytes in frames)
        {
            try
            {
                foreach (var f in ClusterXml.ReadAll(parser, bytes))
                    if (f.Attr("k") is { } kind && f.FirstElement is { } stanza) unhandled.Add((kind, f.Attr("t"), stanza));
            }
            catch (XmppStreamException) { }
        }
        Interlocked.Add(ref _rerouted, unhandled.Count);
        _log.LogWarning("Cluster node {Node} died with {Count} frames from this node unhandled: routed again here", node, unhandled.Count);
        await Guard(handler(node, unhandled), "unhandled-frames");
    }

    private void FailPendingRequests(string? node)
    {
        foreach (var (id, p) in _pending)
            if (node is null || p.Node == node) p.Answer.TrySetResult(null);
    }

    /// One destination node (one registration of it): a bounded queue and the one loop that publishes it, in order,
    /// many frames per publish, and the deliver and route frames it has not acknowledged yet.
    private sealed class Outbox
    {
        public readonly Channel<byte[]> Queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(QueueLimit)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.DropWrite,
        });

        public readonly string? Token;
        public readonly Queue<(long Seq, byte[] Frame)> Unacked = new();
        public long Seq;
        /// When the oldest unacknowledged frame was queued or the last acknowledgement (or resend) came.
        public long Progress;
        /// The number the last resend asked for started from, and when it was queued.
        public long ResentFrom, ResentAt;
        public volatile bool Gone;

        public Outbox(RedisNodeBus bus, string node, string? token)
        {
            Token = token;
            _ = Task.Run(() => bus.WriteLoopAsync(node, this));
        }
    }

    private async Task WriteLoopAsync(string node, Outbox outbox)
    {
        var reader = outbox.Queue.Reader;
        var channel = ChannelOf(node);
        var batch = new ArrayBufferWriter<byte>(64 * 1024);
        var subscriber = _redis.GetSubscriber();
        while (await reader.WaitToReadAsync())
        {
            batch.ResetWrittenCount();
            int frames = 0;
            while (batch.WrittenCount < BatchBytes && reader.TryRead(out var frame))
            {
                batch.Write(frame);
                frames++;
            }
            if (frames == 0 || outbox.Gone) continue;
            var payload = batch.WrittenSpan.ToArray();
            // A publish that fails while Redis reconnects is tried again for up to one lease; after that the node
            // counts as gone for these frames (the router's undeliverable paths cover a dead node's sessions).
            var deadline = DateTime.UtcNow + _lease;
            while (true)
            {
                try
                {
                    long receivers = await subscriber.PublishAsync(channel, payload);
                    if (receivers == 0 && !outbox.Gone && IsAlive(node) && DateTime.UtcNow < deadline && !_stopping.IsCancellationRequested)
                    {
                        // Nobody subscribed: the node is reconnecting to Redis, or dead and not yet declared so. Tried
                        // again (in order: what follows waits) until it is back or down; when down, what it never
                        // acknowledged is routed again here (DownAsync).
                        Interlocked.Add(ref _unreceived, frames);
                        await Task.Delay(200);
                        continue;
                    }
                    Interlocked.Increment(ref _batches);
                    Interlocked.Add(ref _framesSent, frames);
                    break;
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    if (DateTime.UtcNow > deadline || _stopping.IsCancellationRequested)
                    {
                        _log.LogWarning("Cluster link to {Node}: {Frames} frames not published: {Error}", node, frames, e.Message);
                        break;
                    }
                    await Task.Delay(200);
                }
            }
        }
    }

    // ---- Receiving ----

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        var inbox = _inbox!;
        while (!ct.IsCancellationRequested)
        {
            ChannelMessage message;
            try { message = await inbox.ReadAsync(ct); }
            catch (OperationCanceledException) { return; }
            catch (ChannelClosedException) { return; }
            List<Element> frames;
            try { frames = ClusterXml.ReadAll(_parser, (byte[])message.Message!); }
            catch (XmppStreamException e)
            {
                _log.LogError("Cluster batch on {Channel} refused: {Condition} {Text}", message.Channel, e.Condition, e.Text);
                continue;
            }
            Dictionary<string, (long Seq, string? Token)>? acks = null;
            foreach (var frame in frames)
            {
                var order = InOrder(frame, out long seq);
                if (order != Order.Next)
                {
                    // A frame already handled (sent again) is acknowledged again and skipped; one after a gap is skipped
                    // unacknowledged, and the missing ones are asked for: the sender sends them all again, in order.
                    if (order == Order.Duplicate && frame.Attr("n") is { } dupSender)
                        (acks ??= new(StringComparer.Ordinal))[dupSender] = (Math.Max(seq, acks.TryGetValue(dupSender, out var a) ? a.Seq : 0), frame.Attr("d"));
                    continue;
                }
                bool handled;
                try { handled = await HandleFrameAsync(frame); }
                catch (Exception e)
                {
                    handled = true; // handled as far as it goes: routing it again elsewhere would not do better
                    _log.LogError(e, "Cluster frame of kind {Kind} from {Node} failed", frame.Attr("k"), frame.Attr("n"));
                }
                if (handled && seq > 0 && frame.Attr("n") is { } sender)
                {
                    _received[sender + " " + frame.Attr("o")] = seq;
                    (acks ??= new(StringComparer.Ordinal))[sender] = (seq, frame.Attr("d"));
                }
            }
            // One acknowledgement per sender and batch, for the highest numbered frame handled.
            if (acks is not null)
                foreach (var (sender, ack) in acks)
                    if (sender != LocalNode && sender.Length > 0 && HoldsLease)
                        Enqueue(sender, Encode("k", null, ack.Seq, null, null, 0, ack.Token));
        }
    }

    /// False when the frame was not acted on (fenced), so it is not acknowledged.
    private async ValueTask<bool> HandleFrameAsync(Element frame)
    {
        if (frame.Name != "f" || frame.Namespace != Ns.Cluster) return false;
        var kind = frame.Attr("k");
        var from = frame.Attr("n") ?? "";
        var stanza = frame.FirstElement;
        // A node that sends before the membership check has seen it is up: its lease is read now, not in a second.
        if (from.Length > 0) Notice(from);
        if (kind == "a")
        {
            if (long.TryParse(frame.Attr("r"), CultureInfo.InvariantCulture, out var answered) && _pending.TryRemove(answered, out var p))
                p.Answer.TrySetResult(stanza);
            return false;
        }
        if (kind == "k")
        {
            Acknowledged(from, frame);
            return false;
        }
        if (kind == "g")
        {
            Resend(from, frame);
            return false;
        }
        // Fencing: frames that arrive while this node has no valid lease (for example queued by Redis while the
        // process was stopped), or that were sent to an earlier registration of it, are not acted on; the senders
        // have already treated that registration as gone and route them again themselves.
        if (!HoldsLease || (frame.Attr("d") is { } destination && destination != _token))
        {
            Interlocked.Increment(ref _fenced);
            return false;
        }
        switch (kind)
        {
            case "d" when stanza is not null && Jid.TryParse(frame.Attr("t"), out var to) && DeliverHandler is { } deliver:
                await deliver(from, to!, stanza);
                break;
            case "r" when stanza is not null && RouteHandler is { } route:
                await route(from, stanza);
                break;
            case "q":
                await AnswerAsync(from, frame, stanza);
                break;
        }
        return true;
    }

    private async ValueTask AnswerAsync(string from, Element frame, Element? payload)
    {
        if (!long.TryParse(frame.Attr("r"), CultureInfo.InvariantCulture, out var id)) return;
        Element? answer = null;
        if (payload is not null && frame.Attr("q") is { } kind && _handlers.TryGetValue(kind, out var handler))
        {
            try { answer = await handler(from, payload); }
            catch (Exception e) { _log.LogError(e, "Cluster request {Kind} from {Node} failed", kind, from); }
        }
        if (from.Length > 0 && from != LocalNode) Enqueue(from, Encode("a", null, id, null, answer));
    }
}
