using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Streams;
using Xmpp.Server.Streams.StreamManagement;

namespace Xmpp.Server.Sessions;

/// A bound client resource: the sink the router delivers to, plus per-session state modules keep.
/// With stream management (XEP-0198) it outlives its connection and can move to a resumed one.
public sealed class ClientSession : ISession
{
    // Module state by type: two or three entries a session, so a copied array rather than a ConcurrentDictionary,
    // whose buckets and locks cost ~0.6 KiB per idle session.
    private KeyValuePair<Type, object>[] _state = [];
    private readonly object _sendGate = new();
    private XmppStream _stream;
    private StreamManagementSession? _sm;

    internal ClientSession(Jid jid, XmppStream stream)
    {
        Jid = jid;
        _stream = stream;
    }

    public Jid Jid { get; }
    public string RemoteAddress => Stream.RemoteAddress;
    public bool IsSecure => Stream.IsSecure;
    public DateTimeOffset BoundAt { get; } = DateTimeOffset.UtcNow;
    public bool IsClosing => StreamManagement is { } sm ? sm.IsEnded : Stream.IsClosing;

    /// Stream management state, once the client has enabled it.
    public StreamManagementSession? StreamManagement => Volatile.Read(ref _sm);

    /// The connection the session is (or was last) on.
    internal XmppStream Stream => Volatile.Read(ref _stream);

    public bool Send(Element stanza)
    {
        var sm = Volatile.Read(ref _sm);
        if (sm is null)
        {
            // Taken with the lock that enabling holds, so no uncounted stanza slips in after <enabled/>.
            lock (_sendGate)
            {
                sm = _sm;
                if (sm is null)
                {
                    // Written at once when the connection's writer is idle (XmppStream.SendNowOrEnqueue). With stream
                    // management the stanza and its ack request stay queued together, one write for both.
                    if (!_stream.SendNowOrEnqueue(stanza, tracked: false)) return false;
                    // Without stream management, written is as delivered as it gets.
                    SharedDelivery.Of(stanza)?.Settle();
                    return true;
                }
            }
        }
        return sm.Send(stanza);
    }

    public bool IsDetached => StreamManagement?.IsDetached == true;

    public void Close(string streamErrorCondition, string? text = null)
    {
        if (StreamManagement is { } sm) sm.Close(streamErrorCondition, text);
        else Stream.CloseWithError(streamErrorCondition, text);
    }

    /// Another login bound the same full JID and took this session's place (RFC 6120 §7.7.2.2). The session still
    /// ends like any other, so modules release what it held, but what it announced may already be superseded.
    public bool IsReplaced => Volatile.Read(ref _replaced);

    private bool _replaced;
    private int _ended;

    internal void MarkReplaced() => Volatile.Write(ref _replaced, true);

    public void Replace(string text)
    {
        MarkReplaced();
        Close(StreamErrors.Conflict, text);
    }

    /// True for the one caller that runs the session's end (its session-closed handlers); false for every later one.
    internal bool TryBeginEnd() => Interlocked.Exchange(ref _ended, 1) == 0;

    private int _queuedWrites;

    /// A module queued a storage write for a stanza this session sent (offline spool, archive) without waiting for it
    /// to be durable; the session's next IQ is answered only once it is.
    public void NoteQueuedWrite() => Volatile.Write(ref _queuedWrites, 1);

    internal bool TakeQueuedWrites() => Interlocked.Exchange(ref _queuedWrites, 0) != 0;

    /// Module-owned state for this session, created on first use.
    public T State<T>() where T : class, new()
    {
        while (true)
        {
            var current = Volatile.Read(ref _state);
            foreach (var (type, value) in current)
                if (type == typeof(T)) return (T)value;
            var added = new KeyValuePair<Type, object>[current.Length + 1];
            current.CopyTo(added, 0);
            added[^1] = new(typeof(T), new T());
            // As ConcurrentDictionary.GetOrAdd: a racing first call may build a T that is dropped; both get the stored one.
            if (Interlocked.CompareExchange(ref _state, added, current) == current) return (T)added[^1].Value;
        }
    }

    /// From now on every stanza is counted and kept until acknowledged; announce (the &lt;enabled/&gt;) goes out first.
    internal void EnableStreamManagement(StreamManagementSession sm, Element? announce)
    {
        lock (_sendGate)
        {
            if (announce is not null) _stream.Enqueue(announce);
            Volatile.Write(ref _sm, sm);
        }
    }

    private Func<SessionEntry, SessionEntry>? _atBind;

    public void AtBind(Func<SessionEntry, SessionEntry> change)
    {
        var before = _atBind;
        _atBind = before is null ? change : e => change(before(e));
    }

    /// The entry the session is bound with: its JID, itself as the sink, and what Bind 2 inline requests asked for.
    internal SessionEntry InitialEntry()
    {
        var entry = new SessionEntry(Jid, this);
        return _atBind is { } change ? change(entry) : entry;
    }

    /// A resumed stream takes the session over (XEP-0198 §5).
    internal void Attach(XmppStream stream) => Volatile.Write(ref _stream, stream);
}
