using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Sessions;

/// A bound client resource as modules see it: its JID, Send and Close (from ISessionSink) and the state modules keep
/// for it on the node that holds it. What other resources or nodes must know about it lives in its SessionEntry and
/// changes only through ISessionDirectory.
public interface ISession : ISessionSink
{
    /// The session is ending: a stanza sent now may not be taken.
    bool IsClosing { get; }

    /// Another login bound the same full JID and took this session's place (RFC 6120 §7.7.2.2).
    bool IsReplaced { get; }

    /// Module-owned state for this session, created on first use. Node-local: it lives with the session's stream.
    T State<T>() where T : class, new();

    /// A module queued a storage write for a stanza this session sent without waiting for it to be durable; the
    /// session's next IQ is answered only once it is.
    void NoteQueuedWrite();

    /// Before the session is bound (Bind 2 inline requests, XEP-0386 §3.2): a change to the entry it will be bound
    /// with. Once bound, its entry changes only through ISessionDirectory.
    void AtBind(Func<SessionEntry, SessionEntry> change);
}
