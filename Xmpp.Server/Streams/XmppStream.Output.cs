using System.Buffers;
using System.Net.Security;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Streams;

public sealed partial class XmppStream
{
    private static readonly byte[] CloseTag = "</stream:stream>"u8.ToArray();
    private static readonly byte[] Whitespace = " "u8.ToArray();

    /// Tracked: a stanza stream management (XEP-0198) keeps until acknowledged, so cleanup must not re-route it.
    /// Ack, when not negative: an XEP-0198 &lt;a h/&gt; with that count, written without building an element (a client
    /// asking after every message gets one per message).
    /// FlushPending: a flush an inline write started and could not finish; the writer awaits it before writing more.
    private readonly record struct Outgoing(Element? Stanza, byte[]? Raw, bool Tracked = false, long Ack = -1, bool FlushPending = false);

    private static readonly byte[] AckStart = "<a xmlns='urn:xmpp:sm:3' h='"u8.ToArray();
    private static readonly byte[] AckEnd = "'/>"u8.ToArray();

    private SendQueue<Outgoing>? _queue;
    private Task? _writer;
    private int _queued;

    /// Stanzas waiting for this connection's writer.
    public int QueuedStanzas => Volatile.Read(ref _queued);
    private int _closeRequested;
    private volatile bool _closing;
    private (string Condition, string? Text)? _pendingError;
    private long _lastWriteTicks = Environment.TickCount64;
    private int _cleanedUp;
    private volatile bool _endsSession;

    public bool IsClosing => _closing;
    public long MillisecondsSinceWrite => Environment.TickCount64 - Interlocked.Read(ref _lastWriteTicks);

    /// Before binding, the read task writes negotiation replies itself and flushes each one.
    private async ValueTask WriteDirectAsync(Element e)
    {
        e.WriteTo(_output);
        await _output.FlushAsync(_cts.Token);
        Interlocked.Exchange(ref _lastWriteTicks, Environment.TickCount64);
    }

    /// Two negotiation replies that belong together (XEP-0388 success and the features after it) in one flush: one
    /// write and one packet instead of two, as for the stream header and its features.
    private ValueTask WriteDirectAsync(Element first, Element second)
    {
        first.WriteTo(_output);
        return WriteDirectAsync(second);
    }

    private async ValueTask WriteDirectAsync(byte[] raw)
    {
        _output.Write(raw);
        await _output.FlushAsync(_cts.Token);
        Interlocked.Exchange(ref _lastWriteTicks, Environment.TickCount64);
    }

    private void StartWriter()
    {
        _queue = new SendQueue<Outgoing>();
        _writer = Task.Run(WriterLoopAsync);
    }

    /// Queues a stanza for this client from any thread; false when the stream is closing or the client
    /// has stopped reading (the caller then treats the stanza as undeliverable, so nothing is silently lost).
    public bool Enqueue(Element stanza) => Enqueue(stanza, tracked: false);

    internal bool Enqueue(Element stanza, bool tracked) => EnqueueCounted(new Outgoing(stanza, null, tracked));

    // ---- Writing inline (issue 18) ----
    // A stanza for an idle connection is written and flushed by the thread that routes it (most often the sender's
    // read loop), instead of waking this connection's writer on another thread: one thread hand-off fewer between the
    // socket that received it and the socket that sends it. Whoever writes holds _writing (1), the writer loop too,
    // so bytes never interleave; a stanza goes inline only when nothing is queued, so order is kept, and a busy
    // connection gets the queue as before, with its batching and its MaxSendQueue bound.
    private int _writing;
    private ValueTask<System.IO.Pipelines.FlushResult> _pendingFlush;

    /// Like Enqueue, but writes the stanza at once on this thread when the connection's writer is idle.
    internal bool SendNowOrEnqueue(Element stanza, bool tracked)
    {
        if (_closing || _queue is null) return false;
        if (_queue.Count > 0 || Interlocked.CompareExchange(ref _writing, 1, 0) != 0) return Enqueue(stanza, tracked);
        if (_queue.Count > 0 || _closing)
        {
            // Queued (or closed) between the check and taking the writer: the queue keeps the order.
            Volatile.Write(ref _writing, 0);
            return Enqueue(stanza, tracked);
        }
        try
        {
            stanza.WriteTo(_output);
            _s.Metrics.StanzasOut.Add(1, Metrics.ServerMetrics.Tag("kind", stanza.Name));
            var flush = _output.FlushAsync();
            if (flush.IsCompleted)
            {
                Interlocked.Exchange(ref _lastWriteTicks, Environment.TickCount64);
                var result = flush.Result;
                if (result.IsCompleted || result.IsCanceled) _queue.TryComplete(); // the writer loop ends the stream
            }
            else
            {
                // The socket is full: the writer loop takes the flush over and nothing else is written before it ends.
                _pendingFlush = flush;
                _queue.TryWrite(new Outgoing(null, null, FlushPending: true));
            }
            return true;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException
                                       or NotSupportedException)
        {
            _s.Logger.LogDebug("Writing to {Ip} failed: {Message}", RemoteAddress, ex.Message);
            _closing = true;
            _queue.TryComplete(); // the writer loop wakes, ends and closes the connection
            return false;
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }

    // The writer loop's turn: an inline write holds _writing only while it serializes and starts a flush.
    private void TakeWriterTurn()
    {
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _writing, 1, 0) != 0) spin.SpinOnce();
    }

    /// Queues an XEP-0198 &lt;a h/&gt; answer; it counts against the send queue's limit like a stanza, so a client
    /// that keeps asking without reading is cut off.
    internal bool EnqueueAck(uint h) => EnqueueCounted(new Outgoing(null, null, Ack: h));

    // Stanzas and acks count against MaxSendQueue until the writer has written them.
    private bool EnqueueCounted(Outgoing item)
    {
        if (_closing || _queue is null) return false;
        if (Interlocked.Increment(ref _queued) > _s.Options.Limits.MaxSendQueue)
        {
            Interlocked.Decrement(ref _queued);
            CloseWithError(StreamErrors.PolicyViolation, "Too much unread data queued for this client");
            return false;
        }
        if (_queue.TryWrite(item)) return true;
        Interlocked.Decrement(ref _queued);
        return false;
    }

    private void WriteAck(uint h)
    {
        _output.Write(AckStart);
        var span = _output.GetSpan(10);
        System.Buffers.Text.Utf8Formatter.TryFormat(h, span, out int written);
        _output.Advance(written);
        _output.Write(AckEnd);
    }

    /// Sends a whitespace keepalive (RFC 6120 §4.6.1) if the stream is established.
    public void SendKeepalive()
    {
        if (!_closing) _queue?.TryWrite(new Outgoing(null, Whitespace));
    }

    /// One writer per connection: serializes as many queued stanzas as are ready, then flushes once.
    private async Task WriterLoopAsync()
    {
        var queue = _queue!;
        try
        {
            while (await queue.WaitToReadAsync())
            {
                TakeWriterTurn();
                try
                {
                    while (queue.TryRead(out var item))
                    {
                        if (item.FlushPending)
                        {
                            var pending = await _pendingFlush;
                            _pendingFlush = default;
                            if (pending.IsCompleted || pending.IsCanceled) return;
                        }
                        else if (item.Stanza is not null)
                        {
                            Interlocked.Decrement(ref _queued);
                            item.Stanza.WriteTo(_output);
                            _s.Metrics.StanzasOut.Add(1, Metrics.ServerMetrics.Tag("kind", item.Stanza.Name));
                        }
                        else if (item.Ack >= 0)
                        {
                            Interlocked.Decrement(ref _queued);
                            WriteAck((uint)item.Ack);
                        }
                        else _output.Write(item.Raw);
                        if (_output.CanGetUnflushedBytes && _output.UnflushedBytes > 64 * 1024)
                            await _output.FlushAsync();
                    }
                    var flush = await _output.FlushAsync();
                    Interlocked.Exchange(ref _lastWriteTicks, Environment.TickCount64);
                    if (flush.IsCompleted || flush.IsCanceled) break;
                }
                finally
                {
                    Volatile.Write(ref _writing, 0);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            _s.Logger.LogDebug("Writing to {Ip} failed: {Message}", RemoteAddress, ex.Message);
        }
        finally
        {
            _closing = true;
            queue.TryComplete();
            // The write side is done: stop reading too, so the connection ends.
            _cts.Cancel();
        }
    }

    /// Ends the stream with a stream error (RFC 6120 §4.9) from any thread.
    public void CloseWithError(string condition, string? text = null)
    {
        // XEP-0198: a connection declared dead (connection-timeout) may still be resumed; any other error ends the session.
        bool endsSession = condition != StreamErrors.ConnectionTimeout;
        if (endsSession) _endsSession = true;
        if (_queue is not null) CloseWithError(StreamErrors.Create(condition, text), endsSession);
        else if (Interlocked.Exchange(ref _closeRequested, 1) == 0)
        {
            // Before binding the read task owns the output: hand it the error and wake it.
            _pendingError = (condition, text);
            _closing = true;
            // During a handshake _input is the plain reader TLS took over and completed: the handshake's timeout ends it.
            try { _input.CancelPendingRead(); }
            catch (ObjectDisposedException) { }
        }
    }

    /// Ends an established stream with a prepared stream error element (one with application-specific content).
    internal void CloseWithError(Element error, bool endsSession = true)
    {
        if (endsSession) _endsSession = true;
        if (Interlocked.Exchange(ref _closeRequested, 1) != 0) return;
        if (_queue is not null)
        {
            _queue.TryWrite(new Outgoing(error, null));
            _queue.TryWrite(new Outgoing(null, CloseTag));
            _closing = true;
            _queue.TryComplete();
            _ = AbortIfWriterStuckAsync();
        }
    }

    /// A peer that does not read never receives its stream error: after a grace period the connection is cut,
    /// which ends the blocked write and lets cleanup re-route what was still queued.
    private async Task AbortIfWriterStuckAsync()
    {
        if (_writer is null) return;
        if (await Task.WhenAny(_writer, Task.Delay(CloseGrace)) == _writer) return;
        _s.Logger.LogInformation("Connection from {Ip} did not take its closing data within {Seconds} s; aborting it", RemoteAddress, CloseGrace.TotalSeconds);
        _output.CancelPendingFlush();
        _transport.Abort(); // peer stopped reading
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }

    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(5);

    /// Sends the stream error and the closing tag, then lets the connection end (RFC 6120 §4.9.1.1).
    private async ValueTask FailAsync(string condition, string? text)
    {
        if (_queue is not null)
        {
            CloseWithError(condition, text);
            await WaitForWriterAsync();
            return;
        }
        if (Interlocked.Exchange(ref _closeRequested, 1) != 0 && _pendingError is null) return;
        _pendingError = null;
        _closing = true;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (!_headerSent) WriteStreamHeader(null);
            _headerSent = true;
            StreamErrors.Create(condition, text).WriteTo(_output);
            _output.Write(CloseTag);
            await _output.FlushAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
        }
        _s.Logger.LogDebug("Stream from {Ip} closed with {Condition}: {Text}", RemoteAddress, condition, text);
    }

    /// The peer closed its stream: answer with our closing tag (RFC 6120 §4.4).
    private async ValueTask CloseGracefullyAsync()
    {
        _endsSession = true; // XEP-0198 §7: a cleanly closed stream ends the session; there is nothing to resume
        if (_queue is not null)
        {
            if (Interlocked.Exchange(ref _closeRequested, 1) == 0)
            {
                _queue.TryWrite(new Outgoing(null, CloseTag));
                _closing = true;
                _queue.TryComplete();
            }
            await WaitForWriterAsync();
            return;
        }
        _closing = true;
        Interlocked.Exchange(ref _closeRequested, 1);
        try
        {
            if (!_headerSent) WriteStreamHeader(null);
            _output.Write(CloseTag);
            await _output.FlushAsync();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    private async ValueTask WaitForWriterAsync() => await WriterEndedAsync(TimeSpan.FromSeconds(5));

    /// True when the writer loop ended (or never started) within the time. Its timer goes as soon as the writer ends:
    /// a Task.Delay raced against it stayed queued for the whole time after every session end (three per logout).
    private async ValueTask<bool> WriterEndedAsync(TimeSpan limit)
    {
        if (_writer is null || _writer.IsCompleted) return true;
        // A timeout, or the writer's own failure (its loop's to log): either way, whether it has ended says it all.
        try { await _writer.WaitAsync(limit); }
        catch (Exception) { }
        return _writer.IsCompleted;
    }

    private async ValueTask CleanupAsync()
    {
        if (Interlocked.Exchange(ref _cleanedUp, 1) != 0) return;
        _closing = true;
        _state = StreamState.Closed;
        var session = _session;
        if (session is not null)
        {
            _queue?.TryComplete();
            if (session.StreamManagement is { } sm)
            {
                // The session may outlive this connection: stream management decides whether it ends now.
                await _s.StreamManagement.StreamEndedAsync(sm, this, _endsSession);
                await RerouteUnsentAsync();
                session = null;
            }
        }
        if (session is not null)
        {
            // A replaced session is no longer in the directory; its end already ran when it was replaced.
            using (_s.Modules.BeginEnding(session))
                if (_s.Directory.Unbind(session) is not null || session.IsReplaced)
                    await _s.Modules.EndSessionAsync(session, _s.Logger);
            await RerouteUnsentAsync();
        }
        _s.Connections.Remove(this);
        try
        {
            bool written = await WriterEndedAsync(TimeSpan.FromSeconds(2));
            // Kept from here on: an inline write that got in before _closing was seen finishes first, and none follows.
            if (written && _writer is not null) TakeWriterTurn();
            if (_ssl is not null)
            {
                // RFC 6120 §4.4 ends a stream by closing TLS, then TCP: close_notify tells the peer that nothing was cut
                // off (RFC 8446 §6.1); clients such as profanity and check_xmppng report a bare TCP close as an error.
                // Only once the writer is done (SslStream takes one writer at a time) and never waiting on a dead peer.
                if (written) await ShutdownTlsAsync(_ssl);
                await _ssl.DisposeAsync();
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
        _cts.Dispose();
    }

    private async ValueTask ShutdownTlsAsync(SslStream ssl)
    {
        try { await ssl.ShutdownAsync().WaitAsync(TimeSpan.FromSeconds(2)); }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or TimeoutException
                                       or System.Security.Authentication.AuthenticationException or NotSupportedException)
        {
            _s.Logger.LogDebug("TLS close_notify to {Ip} not sent: {Message}", RemoteAddress, ex.Message);
        }
    }

    /// Messages that were queued for this session but never written go back to the router, which hands them to
    /// another resource or the offline spool: a dropped connection loses nothing that never reached the wire.
    private async ValueTask RerouteUnsentAsync()
    {
        if (_queue is null) return;
        await WriterEndedAsync(TimeSpan.FromSeconds(2));
        while (_queue.TryRead(out var item))
        {
            if (item.Tracked) continue; // stream management still holds it
            if (item.Stanza is { Name: "message" } m && m.Attr("type") is not ("error" or "groupchat" or "headline"))
            {
                try { await _s.Router.RouteAsync(m, null); }
                catch (Exception ex) { _s.Logger.LogError(ex, "Re-routing an unsent message failed"); }
            }
        }
    }
}
