namespace Xmpp.Server.Modules;

/// The module registry for the services modules themselves depend on (the router): those are built before the modules,
/// so they get this slot, which the registry fills once it has frozen every module's registrations. Two phases instead
/// of a service locator: whoever builds the host resolves ModuleRegistry at start (XmppHost.Build does).
public sealed class ModuleTable
{
    private ModuleRegistry? _registry;

    public ModuleRegistry Registry =>
        Volatile.Read(ref _registry) ?? throw new InvalidOperationException("The modules are not loaded yet: resolve ModuleRegistry at start.");

    internal void Attach(ModuleRegistry registry)
    {
        if (Interlocked.CompareExchange(ref _registry, registry, null) is not null)
            throw new InvalidOperationException("The module registry is already attached.");
    }
}
