using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Sessions;

/// Where stanzas for one bound resource go. A local stream today; a link to another node later.
public interface ISessionSink
{
    Jid Jid { get; }

    /// Queues a stanza for the resource; false when the session is closing and the stanza was not taken.
    bool Send(Element stanza);

    /// True while the session waits without a connection to be resumed (XEP-0198): stanzas are queued for it but the
    /// device is asleep or out of reach, which is when XEP-0357 push notifications wake it.
    bool IsDetached => false;

    /// Ends the session with a stream error (for example conflict when another login takes the resource).
    void Close(string streamErrorCondition, string? text = null);

    /// Another login bound the same full JID and takes its place (RFC 6120 §7.7.2.2): the session ends with conflict.
    void Replace(string text) => Close(StreamErrors.Conflict, text);
}
