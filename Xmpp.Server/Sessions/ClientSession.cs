using System.Collections.Concurrent;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Sessions;

/// A bound client resource: the sink the router delivers to, plus per-session state modules keep.
public sealed class ClientSession : ISessionSink
{
    private readonly XmppStream _stream;
    private readonly ConcurrentDictionary<Type, object> _state = new();

    internal ClientSession(Jid jid, XmppStream stream)
    {
        Jid = jid;
        _stream = stream;
    }

    public Jid Jid { get; }
    public string RemoteAddress => _stream.RemoteAddress;
    public bool IsSecure => _stream.IsSecure;
    public DateTimeOffset BoundAt { get; } = DateTimeOffset.UtcNow;
    public bool IsClosing => _stream.IsClosing;

    public bool Send(Element stanza) => _stream.Enqueue(stanza);

    public void Close(string streamErrorCondition, string? text = null) => _stream.CloseWithError(streamErrorCondition, text);

    /// Module-owned state for this session, created on first use.
    public T State<T>() where T : class, new() => (T)_state.GetOrAdd(typeof(T), static _ => new T());
}
