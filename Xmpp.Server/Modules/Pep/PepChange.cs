namespace Xmpp.Server.Modules.Pep;

public enum PepChangeKind
{
    Published,
    Retracted,
    Purged,
    Deleted,
}

/// Something changed on a PEP node, whoever did it (a client or another module); Item is set for Published,
/// ItemId for Published and Retracted.
public sealed record PepChange(Xmpp.Protocol.Jid Owner, string Node, PepChangeKind Kind, string? ItemId, PepItem? Item);
