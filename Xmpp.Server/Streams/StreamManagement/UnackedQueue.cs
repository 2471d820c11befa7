// XEP-0198 §4: acknowledgement bookkeeping for stanzas sent to the client.
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Streams.StreamManagement;

/// A stanza the client has not acknowledged yet. Shared links a message to the bare JID that other resources
/// received too, so that when this session ends it is routed on only if none of them took it (see SharedDelivery).
public readonly record struct UnackedStanza(Element Stanza, DateTimeOffset QueuedAt, SharedDelivery? Shared);

/// Stanzas sent to the client in order, numbered by XEP-0198's counter, which wraps at 2^32 (§4: "h" is an
/// unsigned 32-bit value that starts again at zero). Not thread-safe: the owning session locks around it.
public sealed class UnackedQueue(uint start = 0)
{
    private readonly Queue<UnackedStanza> _items = new();

    /// The sequence number of the last stanza sent (the value the client's 'h' reaches when it has all).
    public uint Sent { get; private set; } = start;

    /// The last 'h' the client acknowledged.
    public uint Acked { get; private set; } = start;

    public int Count => _items.Count;

    public void Add(UnackedStanza stanza)
    {
        _items.Enqueue(stanza);
        Sent = unchecked(Sent + 1);
    }

    /// How many stanzas an acknowledgement of h releases, or -1 when h counts more than was ever sent.
    public long Releases(uint h)
    {
        uint n = unchecked(h - Acked);
        return n > (uint)_items.Count ? -1 : n;
    }

    /// Drops the stanzas up to and including number h; false (nothing changed) when h is higher than Sent.
    public bool Acknowledge(uint h)
    {
        long n = Releases(h);
        if (n < 0) return false;
        for (long i = 0; i < n; i++) _items.Dequeue().Shared?.Settle();
        Acked = h;
        return true;
    }

    public IEnumerable<UnackedStanza> Items => _items;

    /// Empties the queue (the session has ended) and returns what was still unacknowledged, oldest first.
    public List<UnackedStanza> TakeAll()
    {
        var all = new List<UnackedStanza>(_items);
        _items.Clear();
        Acked = Sent;
        return all;
    }
}
