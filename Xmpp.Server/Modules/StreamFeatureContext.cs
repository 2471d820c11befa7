namespace Xmpp.Server.Modules;

/// What a stream feature provider may know about the stream it is offered on. IsStreamManaged: XEP-0198 is already
/// on for this stream (enabled inline in Bind 2, or resumed inside SASL2), so it cannot be negotiated again.
public readonly record struct StreamFeatureContext(bool IsSecure, bool IsAuthenticated, string Domain, bool IsStreamManaged = false);
