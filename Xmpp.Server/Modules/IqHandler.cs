namespace Xmpp.Server.Modules;

public delegate ValueTask IqHandler(IqContext context);
