using Xmpp.Protocol;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Roster;

/// The roster as other modules see it (presence subscriptions, later shared groups or blocking): every change goes
/// through one per-account lock and produces the roster push RFC 6121 §2.1.6 requires, so modules never write the
/// roster store themselves.
public interface IRosterService
{
    /// The stored record for one contact of a local account, including hidden ones (a pending request only).
    ValueTask<RosterItem?> FindAsync(Jid user, Jid contact);

    /// Every record of a local account, hidden ones included; callers filter on InRoster and Subscription.
    ValueTask<IReadOnlyList<RosterItem>> ItemsAsync(Jid user);

    /// Changes one record under the account's roster lock. The function gets the current record (or null) and returns
    /// the new one: null deletes it, the same instance changes nothing. Interested resources get a push when what
    /// they can see changed (subscription='remove' when a visible item goes away).
    ValueTask<RosterChange> ChangeAsync(Jid user, Jid contact, Func<RosterItem?, RosterItem?> change);
}
