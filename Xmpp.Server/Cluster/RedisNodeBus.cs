using System.Buffers;
using System.Collections.Concurrent;
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
/// many sessions on one node costs one publish per batch. Frames: &lt;f k='d|r|q|a' n='sender' t='target' r='request id'
/// q='request kind'&gt;stanza&lt;/f&gt; (deliver, route, request, answer). The lease and failure detection are in
/// RedisNodeBus.Lease.cs.
public sealed partial class RedisNodeBus : INodeBus, IHostedService, IAsyncDisposable
{
    private const int QueueLimit = 100_000;
    private const int BatchBytes = 256 * 1024;

    private readonly IConnectionMultiplexer _redis;
    private readonly ILogger _log;
    private readonly TimeSpan _lease;
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
        LocalNode = options.NodeId;
    }

    public string LocalNode { get; }

    /// Receives deliver frames: the sender node, the full JID and the stanza. Set once at start by the directory.
    public Func<string, Jid, Element, ValueTask>? DeliverHandler { get; set; }

    /// Receives route frames: the sender node and the stanza. Set once at start by the router's side.
    public Func<string, Element, ValueTask>? RouteHandler { get; set; }

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

    public void Deliver(string node, Jid fullJid, Element stanza) =>
        Enqueue(node, Encode("d", fullJid.ToString(), 0, null, stanza));

    public void Route(string node, Element stanza) => Enqueue(node, Encode("r", null, 0, null, stanza));

    public async Task<Element?> RequestAsync(string node, string kind, Element payload, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (node == LocalNode) return null;
        // A node that registered since the last membership check (it runs every second) is asked all the same when its
        // lease is in Redis: a request is rare (resumption on another node), and a client resuming right after that
        // node started must not be told its session is gone.
        if (!IsAlive(node) && !await LeaseInRedisAsync(node)) return null;
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

    private byte[] Encode(string kind, string? target, long requestId, string? name, Element? stanza)
    {
        var w = new ArrayBufferWriter<byte>(512);
        ClusterXml.Write(w, "f", [("k", kind), ("n", LocalNode), ("t", target),
            ("r", requestId == 0 ? null : requestId.ToString(CultureInfo.InvariantCulture)), ("q", name)], stanza);
        return w.WrittenSpan.ToArray();
    }

    // The node's lease as Redis has it now (a live registration this node has not yet seen), false when Redis is away.
    private async Task<bool> LeaseInRedisAsync(string node)
    {
        if (!HoldsLease) return false;
        try
        {
            var lease = await _redis.GetDatabase().StringGetAsync(LeaseKey(node));
            return !lease.IsNull && !_deadTokens.ContainsKey(lease.ToString());
        }
        catch (RedisException)
        {
            return false;
        }
    }

    private void Enqueue(string node, byte[] frame)
    {
        if (node == LocalNode) throw new InvalidOperationException("a frame for this node itself");
        if (_stopping.IsCancellationRequested) return;
        var outbox = _outboxes.GetOrAdd(node, n => new Outbox(this, n));
        if (!outbox.Queue.Writer.TryWrite(frame))
            _log.LogWarning("Cluster link to {Node} is full ({Limit} frames queued): a frame was dropped", node, QueueLimit);
    }

    // Completing the queue lets its loop publish what is already queued, then end.
    private void DropOutbox(string node)
    {
        if (_outboxes.TryRemove(node, out var outbox)) outbox.Queue.Writer.TryComplete();
    }

    private void FailPendingRequests(string? node)
    {
        foreach (var (id, p) in _pending)
            if (node is null || p.Node == node) p.Answer.TrySetResult(null);
    }

    /// One destination node: a bounded queue and the one loop that publishes it, in order, many frames per publish.
    private sealed class Outbox
    {
        public readonly Channel<byte[]> Queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(QueueLimit)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.DropWrite,
        });

        public Outbox(RedisNodeBus bus, string node) => _ = Task.Run(() => bus.WriteLoopAsync(node, Queue.Reader));
    }

    private async Task WriteLoopAsync(string node, ChannelReader<byte[]> reader)
    {
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
            if (frames == 0) continue;
            var payload = batch.WrittenSpan.ToArray();
            // A publish that fails while Redis reconnects is tried again for up to one lease; after that the node
            // counts as gone for these frames (the router's undeliverable paths cover a dead node's sessions).
            var deadline = DateTime.UtcNow + _lease;
            while (true)
            {
                try
                {
                    await subscriber.PublishAsync(channel, payload);
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
            foreach (var frame in frames)
            {
                try { await HandleFrameAsync(frame); }
                catch (Exception e) { _log.LogError(e, "Cluster frame of kind {Kind} from {Node} failed", frame.Attr("k"), frame.Attr("n")); }
            }
        }
    }

    private async ValueTask HandleFrameAsync(Element frame)
    {
        if (frame.Name != "f" || frame.Namespace != Ns.Cluster) return;
        var kind = frame.Attr("k");
        var from = frame.Attr("n") ?? "";
        var stanza = frame.FirstElement;
        if (kind == "a")
        {
            if (long.TryParse(frame.Attr("r"), CultureInfo.InvariantCulture, out var answered) && _pending.TryRemove(answered, out var p))
                p.Answer.TrySetResult(stanza);
            return;
        }
        // Fencing: frames that arrive while this node has no valid lease (for example queued by Redis while the
        // process was stopped) are not acted on; the senders have already treated this node as gone.
        if (!HoldsLease)
        {
            Interlocked.Increment(ref _fenced);
            return;
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
