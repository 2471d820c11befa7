// XEP-0114: Jabber Component Protocol — each configured component domain is a service whose link is the component.
using Xmpp.Server.Modules;

namespace Xmpp.Server.Links.Components;

/// Declares each configured component domain as a service of its own: the router then hands everything addressed to
/// the domain or a JID at it to the component link, server links accept it as a domain of ours, and the server's
/// disco#items lists it (XEP-0030 §4) under the served domain it is a subdomain of (else the first served domain).
[Xep("XEP-0114", "1.6")]
public sealed class ComponentsModule(ComponentLinks links) : IXmppModule
{
    public void Register(IModuleBuilder module)
    {
        foreach (var (domain, parent, name) in links.Configured)
            module.Service(domain, parent, name, links.DeliverAsync, wholeDomain: true);
    }
}
