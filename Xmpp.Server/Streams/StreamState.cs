namespace Xmpp.Server.Streams;

/// Where a stream is in RFC 6120 negotiation.
public enum StreamState
{
    AwaitingHeader,
    Negotiating,
    Authenticated,
    Bound,
    Closed,
}
