namespace Xmpp.Server.Hosting;

/// The validated options, resolved once at start-up (cheaper on hot paths than IOptions lookups).
public sealed class XmppServerOptionsAccessor(XmppServerOptions value)
{
    public XmppServerOptions Value { get; } = value;
}
