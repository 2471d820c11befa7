using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules;

/// Lets a module announce a session event to all modules (the presence module raises "available" on initial presence).
/// The registry is resolved on first use because modules themselves are what it is built from.
public sealed class SessionEvents(IServiceProvider services, ILogger<SessionEvents> logger)
{
    private ModuleRegistry? _registry;
    private ModuleRegistry Registry => _registry ??= services.GetRequiredService<ModuleRegistry>();

    /// Completes once every session of the account that has left the directory has finished ending (its session-closed
    /// handlers have run): see ModuleRegistry.BeginEnding.
    public Task EndingAsync(Xmpp.Protocol.Jid bare) => Registry.EndingAsync(bare);

    /// RFC 6121 §4.2: the session sent its initial presence; offline messages and the like follow.
    public async ValueTask RaiseAvailableAsync(ISession session)
    {
        foreach (var handler in Registry.SessionAvailable)
        {
            try { await handler(session); }
            catch (Exception ex) { logger.LogError(ex, "Session-available handler failed for {Jid}", session.Jid); }
        }
    }
}
