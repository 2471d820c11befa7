namespace Xmpp.Server.Modules;

/// What a stream feature provider may know about the stream it is offered on.
public readonly record struct StreamFeatureContext(bool IsSecure, bool IsAuthenticated, string Domain);
