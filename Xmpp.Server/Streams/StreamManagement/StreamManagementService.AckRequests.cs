using System.Collections.Concurrent;

namespace Xmpp.Server.Streams.StreamManagement;

/// When the server asks clients for acks. XEP-0198 §4 lets either party send &lt;r/&gt; at any time and says nothing of
/// how often; each one costs the client a wake-up and an &lt;a/&gt; on the wire. A stanza after a quiet spell carries
/// its request with it (a phone's radio is up for that write anyway); a busy stream is asked about once per
/// AckRequestIntervalMilliseconds, or at once when AckRequestEveryStanzas (at most half of MaxUnackedStanzas) wait, so
/// the queue drains well before its limit. Paced requests wait here, and one timer for all sessions sends them, armed only while some wait.
public sealed partial class StreamManagementService
{
    private readonly ConcurrentQueue<StreamManagementSession> _requestsDue = new();
    private ITimer? _requestTimer;
    private int _requestTimerArmed;

    internal TimeSpan AckRequestInterval => TimeSpan.FromMilliseconds(options.Value.StreamManagement.AckRequestIntervalMilliseconds);
    // At most half the queue, so the request goes out well before a client that acks promptly would be cut off.
    internal int AckRequestEveryStanzas =>
        Math.Min(options.Value.StreamManagement.AckRequestEveryStanzas, Math.Max(1, options.Value.StreamManagement.MaxUnackedStanzas / 2));
    internal long Timestamp => time.GetTimestamp();
    internal TimeSpan Since(long timestamp) => time.GetElapsedTime(timestamp);

    /// The session asks for an ack once the interval since its last request has passed.
    internal void RequestAckLater(StreamManagementSession sm)
    {
        _requestsDue.Enqueue(sm);
        if (Interlocked.CompareExchange(ref _requestTimerArmed, 1, 0) != 0) return;
        // Only the caller that armed it gets here, so the timer is created once.
        _requestTimer ??= time.CreateTimer(_ => SendDueRequests(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _requestTimer.Change(AckRequestInterval, Timeout.InfiniteTimeSpan);
    }

    private void SendDueRequests()
    {
        // Disarmed before the queue is read: a session queued after this point arms the timer again itself.
        Volatile.Write(ref _requestTimerArmed, 0);
        var count = _requestsDue.Count;
        for (var i = 0; i < count && _requestsDue.TryDequeue(out var sm); i++)
            sm.SendPacedRequest();
    }
}
