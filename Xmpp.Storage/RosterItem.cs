namespace Xmpp.Storage;

// One contact of a user's roster, with the RFC 6121 §3 subscription bookkeeping.
// InRoster false marks a record kept only for a pending inbound request or a pre-approval (RFC 6121 §3.4),
// which must survive but is not shown in the roster.
public sealed record RosterItem(
    string Jid,
    string? Name,
    IReadOnlyList<string> Groups,
    Subscription Subscription,
    bool AskOut,
    bool PendingIn,
    bool PreApproved,
    bool InRoster,
    string? PendingInStatus = null);
