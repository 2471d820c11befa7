namespace Xmpp.Server.Modules.Invites;

public enum InviteKind
{
    /// Creates an account on this server (XEP-0401 account invitation); with an inviter, the new account and the
    /// inviter are subscribed to each other.
    Account,

    /// Lets anyone become the inviter's contact (XEP-0379); with CreatesAccount it may also register an account here.
    Contact,
}

/// One stored invitation. The token itself is never stored, only its SHA-256 (Id), so a copy of the database hands out
/// no working invitations; Id is also the store key, so a lookup reveals nothing about other tokens.
/// GrantsAdmin (only on account invitations an operator creates) makes each account it creates an administrator.
public sealed record Invite(
    string Id,
    InviteKind Kind,
    string Domain,
    string? Inviter,
    DateTimeOffset Created,
    DateTimeOffset Expires,
    int MaxUses,
    int Uses,
    bool CreatesAccount,
    bool GrantsAdmin = false)
{
    public bool IsExpired(DateTimeOffset now) => now >= Expires;
    public bool IsUsedUp => Uses >= MaxUses;
}
