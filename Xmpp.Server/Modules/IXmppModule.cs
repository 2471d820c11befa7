namespace Xmpp.Server.Modules;

/// A feature of the server. Everything it contributes is declared in Register, once, at start-up.
public interface IXmppModule
{
    void Register(IModuleBuilder module);
}
