// XEP-0198: Stream Management, the per-session state that outlives a connection.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams.StreamManagement;

/// Stream management of one bound session: counts handled inbound stanzas, keeps outbound ones until the client
/// acknowledges them, and survives the loss of its connection (detached) until it is resumed or times out.
/// Every outbound stanza goes through Send, under one lock, so queue order is wire order.
public sealed class StreamManagementSession
{
    private static readonly Element Request = new("r", Ns.StreamManagement);

    private readonly object _gate = new();
    private readonly StreamManagementService _service;
    private readonly UnackedQueue _unacked;
    private XmppStream? _stream;      // the connection that owns the session; null while detached
    private bool _live;               // its writer runs, so stanzas can be written to it
    private bool _ended;
    private bool _ackRequested;       // an <r/> is out and not yet answered
    private bool _requestPaced;       // a paced <r/> waits in the service's queue
    private long _lastRequest = long.MinValue; // timestamp of the last <r/>
    private long _generation;         // bumped on every detach and attach: a stale expiry timer does nothing
    private int _handled;             // inbound stanzas handled, mod 2^32 (Interlocked wraps)
    private int _handledDurable;      // the value last made durable by a storage flush

    internal StreamManagementSession(StreamManagementService service, ClientSession session, XmppStream stream,
        string? id, TimeSpan resumeTimeout, uint start = 0)
        : this(service, session, stream, id, resumeTimeout, start, start, live: true)
    {
    }

    /// A session handed over from another node (issue 17): the client acknowledged acked of the stanzas sent to it, this
    /// side of the stream handled handled; it goes live after &lt;resumed/&gt; is written.
    internal StreamManagementSession(StreamManagementService service, ClientSession session, XmppStream stream,
        string? id, TimeSpan resumeTimeout, uint acked, uint handled, bool live)
    {
        _service = service;
        Session = session;
        _stream = stream;
        _live = live;
        Id = id;
        ResumeTimeout = resumeTimeout;
        _unacked = new UnackedQueue(acked);
        _handled = unchecked((int)handled);
        _handledDurable = _handled;
    }

    /// A stanza the old node had sent and the client had not acknowledged: it goes out again when the session goes live.
    internal void Adopt(Element stanza)
    {
        lock (_gate) _unacked.Add(new UnackedStanza(stanza, _service.Now, null));
    }

    /// Issue 17: the session moves to another node. Like TakeOver, the client's h releases what it got; the rest is
    /// handed out and the session ends here without its end (the new node binds the same resource).
    internal ResumeOutcome HandOut(uint h, out XmppStream? previous, out uint sent, out List<UnackedStanza> unacked)
    {
        lock (_gate)
        {
            previous = null;
            unacked = [];
            sent = _unacked.Sent;
            if (_ended) return ResumeOutcome.Gone;
            if (_unacked.Releases(h) < 0) return ResumeOutcome.HandledTooHigh;
            _unacked.Acknowledge(h);
            previous = _stream;
            _stream = null;
            _live = false;
            _ended = true;
            _generation++;
            // Each goes out again on the new node, which re-routes it if that session ends: settled here. (Kept here
            // too until the new node confirms it took them; without that, routed again here, with no shared delivery.)
            foreach (var item in _unacked.TakeAll())
            {
                item.Shared?.Settle();
                unacked.Add(item with { Shared = null });
            }
            return ResumeOutcome.TakenOver;
        }
    }

    public ClientSession Session { get; }

    /// The SM-ID clients resume with; null when resumption was not enabled.
    public string? Id { get; }

    public bool Resumable => Id is not null;
    public TimeSpan ResumeTimeout { get; }

    public uint Handled => unchecked((uint)Volatile.Read(ref _handled));

    public bool IsEnded { get { lock (_gate) return _ended; } }

    public bool IsDetached { get { lock (_gate) return _stream is null && !_ended; } }

    public int UnackedCount { get { lock (_gate) return _unacked.Count; } }

    /// One more stanza from the client has been routed (or stored): XEP-0198 §4 counts it as handled.
    internal void CountHandled() => Interlocked.Increment(ref _handled);

    /// The 'h' to report in an &lt;a/&gt;, and whether stanzas were handled since the last storage flush.
    internal (uint H, bool NeedsFlush) HandledForAck()
    {
        int h = Volatile.Read(ref _handled);
        return (unchecked((uint)h), h != Volatile.Read(ref _handledDurable));
    }

    internal void MarkDurable(uint h) => Volatile.Write(ref _handledDurable, unchecked((int)h));

    // The last answer to an <r/> still waiting for its flush; answers go out in request order, so h never goes back.
    private Task _pendingAck = Task.CompletedTask;

    // Answers waiting for one flush on one connection: a client asking after every message has several per group
    // commit, and they go out together (storage hands every flush of a group the same task).
    private sealed class PendingAcks(XmppStream stream, Task? durable)
    {
        public XmppStream Stream { get; } = stream;
        public Task? Durable { get; } = durable;
        public List<uint> Counts { get; } = [];
        public bool Taken { get; set; }
    }

    private PendingAcks? _lastAcks;

    /// Sends &lt;a h/&gt; once durable (a storage flush; null when nothing needed one) has completed and every earlier
    /// answer is out. A failed flush ends the stream with internal-server-error instead of acknowledging.
    /// The answer goes to the connection the request came on: after a resumption the client has its count from
    /// &lt;resumed/&gt;.
    internal void AckWhenDurable(Task? durable, uint h)
    {
        var stream = Session.Stream;
        lock (_gate)
        {
            if (!_pendingAck.IsCompleted || durable is { IsCompletedSuccessfully: false })
            {
                if (_lastAcks is { Taken: false } last && ReferenceEquals(last.Durable, durable) && ReferenceEquals(last.Stream, stream))
                {
                    last.Counts.Add(h);
                    return;
                }
                var acks = new PendingAcks(stream, durable);
                acks.Counts.Add(h);
                _lastAcks = acks;
                _pendingAck = AckLaterAsync(_pendingAck, acks);
                return;
            }
        }
        if (durable is not null) MarkDurable(h);
        SendAck(stream, h);
    }

    private async Task AckLaterAsync(Task previous, PendingAcks acks)
    {
        await previous.ConfigureAwait(false);
        var failed = false;
        if (acks.Durable is not null)
        {
            try
            {
                await acks.Durable.ConfigureAwait(false);
            }
            catch (Exception)
            {
                failed = true;
            }
        }
        uint[] counts;
        lock (_gate)
        {
            acks.Taken = true;
            counts = [.. acks.Counts];
        }
        if (failed)
        {
            acks.Stream.CloseWithError(StreamErrors.InternalServerError, "Storage failed; received stanzas cannot be acknowledged");
            return;
        }
        if (acks.Durable is not null) MarkDurable(counts[^1]);
        foreach (var h in counts) SendAck(acks.Stream, h);
    }

    private static void SendAck(XmppStream stream, uint h) => stream.EnqueueAck(h);

    internal XmppStream? LiveStream { get { lock (_gate) return _live ? _stream : null; } }

    /// Queues a stanza for the client: written now when connected, kept for the resumed stream when detached.
    /// False when the session has ended or its unacknowledged queue is full; the router then treats the stanza
    /// as undeliverable, so it is never lost.
    internal bool Send(Element stanza)
    {
        var shared = SharedDelivery.Of(stanza);
        XmppStream? overflowStream = null;
        bool overflowDetached = false;
        lock (_gate)
        {
            if (_ended) return false;
            if (_unacked.Count >= _service.MaxUnacked)
            {
                if (_stream is null) { _ended = true; overflowDetached = true; }
                else overflowStream = _stream;
            }
            else
            {
                _unacked.Add(new UnackedStanza(stanza, _service.Now, shared));
                if (_live && _stream is { } stream)
                {
                    stream.Enqueue(stanza, tracked: true);
                    RequestAck(stream);
                }
                return true;
            }
        }
        // Too many unacknowledged stanzas: a local policy the client violates by not acking (RFC 6120 §4.9.3.14).
        if (overflowStream is not null)
            overflowStream.CloseWithError(StreamErrors.PolicyViolation, "Too many unacknowledged stanzas");
        if (overflowDetached) _service.EndInBackground(this, "its unacknowledged queue is full");
        return false;
    }

    // Under _gate, with stanzas unacknowledged on a live stream: asks now after a quiet spell or when enough wait,
    // otherwise once the interval since the last request is over (StreamManagementService.AckRequests).
    private void RequestAck(XmppStream stream)
    {
        if (_ackRequested) return;
        if (_unacked.Count >= _service.AckRequestEveryStanzas || _lastRequest == long.MinValue
            || _service.Since(_lastRequest) >= _service.AckRequestInterval)
            SendRequest(stream);
        else if (!_requestPaced)
        {
            _requestPaced = true;
            _service.RequestAckLater(this);
        }
    }

    /// The pacing interval is over: asks unless a request went out meanwhile or nothing waits.
    internal void SendPacedRequest()
    {
        lock (_gate)
        {
            _requestPaced = false;
            // Pacing only ever postpones by the interval, so whatever the clock says now, this one goes out.
            if (!_ended && !_ackRequested && _unacked.Count > 0 && _live && _stream is { } stream)
                SendRequest(stream);
        }
    }

    // Under _gate.
    private void SendRequest(XmppStream stream)
    {
        _ackRequested = true;
        _lastRequest = _service.Timestamp;
        stream.Enqueue(Request, tracked: true);
    }

    /// Handles the client's &lt;a h='…'/&gt;; false when h counts more stanzas than were sent.
    internal bool Acknowledge(uint h, out uint sent)
    {
        lock (_gate)
        {
            sent = _unacked.Sent;
            if (!_unacked.Acknowledge(h)) return false;
            _ackRequested = false;
            // Stanzas sent after our last <r/>: ask again so the queue drains.
            if (_unacked.Count > 0 && _live && _stream is { } stream)
                RequestAck(stream);
            return true;
        }
    }

    /// The connection is gone. Returns true when the session must end now (not resumable, or ended on purpose);
    /// otherwise it waits detached and schedules its expiry. A stream that no longer owns the session is ignored.
    internal bool Detach(XmppStream stream, bool endsSession, out long generation)
    {
        lock (_gate)
        {
            generation = 0;
            if (!ReferenceEquals(_stream, stream) || _ended) return false;
            _stream = null;
            _live = false;
            generation = ++_generation;
            if (Resumable && !endsSession) return false;
            _ended = true;
            return true;
        }
    }

    /// The resumption timer fired: ends the session unless it was resumed (or detached again) meanwhile.
    internal bool ExpireIfStill(long generation)
    {
        lock (_gate)
        {
            if (_ended || _stream is not null || generation != _generation) return false;
            _ended = true;
            return true;
        }
    }

    /// Ends the session from outside (replaced by a new bind, server shutdown); true if this call ended it.
    internal bool EndIfDetached()
    {
        lock (_gate)
        {
            if (_ended || _stream is not null) return false;
            _ended = true;
            return true;
        }
    }

    internal XmppStream? CurrentStream { get { lock (_gate) return _stream; } }

    /// Ends the session with a stream error (conflict, shutdown): through its connection when it has one,
    /// directly when it is detached.
    internal void Close(string condition, string? text)
    {
        XmppStream? stream;
        lock (_gate)
        {
            if (_ended) return;
            stream = _stream;
            if (stream is null) _ended = true;
        }
        if (stream is not null) stream.CloseWithError(condition, text);
        else _service.EndInBackground(this, condition);
    }

    /// XEP-0198 §5: a new stream takes the session over. The client's h acknowledges what it got before the
    /// connection broke. Returns the stream that owned it before (to be closed) through previous.
    internal ResumeOutcome TakeOver(XmppStream stream, uint h, out XmppStream? previous, out uint sent)
    {
        lock (_gate)
        {
            previous = null;
            sent = _unacked.Sent;
            if (_ended) return ResumeOutcome.Gone;
            if (_unacked.Releases(h) < 0) return ResumeOutcome.HandledTooHigh;
            _unacked.Acknowledge(h);
            previous = _stream;
            _stream = stream;
            _live = false;
            _ackRequested = false;
            _generation++;
            return ResumeOutcome.TakenOver;
        }
    }

    /// After &lt;resumed/&gt; is written: every stanza still unacknowledged goes out again, in order, then new ones.
    internal bool GoLive(XmppStream stream)
    {
        lock (_gate)
        {
            if (_ended || !ReferenceEquals(_stream, stream)) return false;
            _live = true;
            foreach (var item in _unacked.Items) stream.Enqueue(item.Stanza, tracked: true);
            if (_unacked.Count > 0) SendRequest(stream);
            return true;
        }
    }

    /// The session has ended: hands over what the client never acknowledged (see StreamManagementService.EndAsync).
    /// A snapshot of the stanzas sent and not yet acknowledged (what a detached device has missed so far).
    public IReadOnlyList<Element> UnackedStanzas()
    {
        lock (_gate) return _unacked.Items.Select(i => i.Stanza).ToList();
    }

    internal List<UnackedStanza> TakeUnacked()
    {
        lock (_gate) return _unacked.TakeAll();
    }
}

internal enum ResumeOutcome { TakenOver, Gone, HandledTooHigh }
