namespace Xmpp.Server.Modules;

/// A hook returns true when it has taken the stanza and routing must stop.
public delegate ValueTask<bool> StanzaHook(StanzaContext context);
