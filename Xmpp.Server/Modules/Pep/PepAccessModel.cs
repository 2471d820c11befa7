namespace Xmpp.Server.Modules.Pep;

/// XEP-0060 §4.5 access models a PEP node can have ("authorize" needs subscription approval, which PEP does not use).
public enum PepAccessModel
{
    Open,
    Presence,
    Roster,
    Whitelist,
}
