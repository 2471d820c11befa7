using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Cluster;

// Deliver and route frames are numbered per destination (Outbox.Seq) and acknowledged up to a number. Redis pub/sub
// keeps nothing: a frame Redis handed to a subscriber connection that broke before the node read it is gone, and the
// acknowledgement of a later frame would have cleared it at the sender. So a node acts on a sender's frames only in
// number order (go-back-N): one already handled is skipped and acknowledged again; one after a gap is skipped and the
// sender is asked ("g") for everything from the first missing number on, which it queues again in order. A sender
// whose frames go unacknowledged for a while names its last number ("p"), so a lost end is asked for too. Frames are
// counted per sender registration (its lease token, attribute "o"): a sender that registers again starts at 1.
public sealed partial class RedisNodeBus
{
    private enum Order { Next, Duplicate, Gap, Ignore }

    // "{sender} {sender's token}" -> the highest frame number handled in order.
    private readonly ConcurrentDictionary<string, long> _received = new(StringComparer.Ordinal);

    // "{sender} {sender's token}" -> (first missing number, when it was asked for): one request per gap and 500 ms.
    private readonly ConcurrentDictionary<string, (long First, long At)> _asked = new(StringComparer.Ordinal);

    private static readonly TimeSpan AskAgainAfter = TimeSpan.FromMilliseconds(500);

    /// Frames skipped because one before them was missing, since start.
    public long OutOfOrder => Interlocked.Read(ref _outOfOrder);

    private long _outOfOrder;

    private Order InOrder(Element frame, out long seq)
    {
        seq = 0;
        var sender = frame.Attr("n");
        if (string.IsNullOrEmpty(sender) || sender == LocalNode || frame.Attr("o") is not { } origin) return Order.Next;
        // Sent to an earlier registration of this node: fenced by HandleFrameAsync, not counted here.
        if (frame.Attr("d") is { } destination && destination != _token) return Order.Next;
        var key = sender + " " + origin;
        if (frame.Attr("k") == "j")
        {
            // The sender no longer keeps frames this node asked for: go on after them.
            if (long.TryParse(frame.Attr("r"), CultureInfo.InvariantCulture, out var skipTo))
            {
                _received.AddOrUpdate(key, skipTo, (_, last) => Math.Max(last, skipTo));
                _log.LogWarning("Cluster node {Node} no longer had frames up to {Seq} that this node missed", sender, skipTo);
            }
            return Order.Ignore;
        }
        long handled = _received.TryGetValue(key, out var h) ? h : 0;
        if (frame.Attr("k") == "p")
        {
            // The sender has had no acknowledgement for a while and names the last frame it sent: either this node
            // has it (the acknowledgement was lost or late: acknowledge again) or it missed the end (ask for it).
            if (long.TryParse(frame.Attr("r"), CultureInfo.InvariantCulture, out var last) && HoldsLease)
            {
                if (handled < last) AskFrom(sender, key, handled + 1, frame.Attr("d"), last);
                else if (handled > 0) Enqueue(sender, Encode("k", null, handled, null, null, 0, frame.Attr("d")));
            }
            return Order.Ignore;
        }
        if (!long.TryParse(frame.Attr("s"), CultureInfo.InvariantCulture, out seq)) return Order.Next;
        if (seq <= handled) return Order.Duplicate;
        if (seq == handled + 1) return Order.Next;
        Interlocked.Increment(ref _outOfOrder);
        if (HoldsLease) AskFrom(sender, key, handled + 1, frame.Attr("d"), seq);
        return Order.Gap;
    }

    private void AskFrom(string sender, string key, long first, string? destination, long seen)
    {
        long now = Stopwatch.GetTimestamp();
        if (_asked.TryGetValue(key, out var asked) && asked.First == first && Stopwatch.GetElapsedTime(asked.At, now) < AskAgainAfter) return;
        _asked[key] = (first, now);
        _log.LogInformation("Cluster frames from {Node}: {Seq} sent, {First} missing; asking for the frames from there on again", sender, seen, first);
        Enqueue(sender, Encode("g", null, first, null, null, 0, destination));
    }

    // A sender that is down (or this node's own new registration) starts its numbering again.
    private void ForgetReceived(string? node, string? token)
    {
        if (node is null)
        {
            _received.Clear();
            _asked.Clear();
            return;
        }
        _received.TryRemove(node + " " + token, out _);
        _asked.TryRemove(node + " " + token, out _);
    }
}
