using Xmpp.Storage;

namespace Xmpp.Server.Modules.Roster;

/// The record before and after IRosterService.ChangeAsync; Version is the roster version after the change
/// (unchanged when nothing was written).
public sealed record RosterChange(RosterItem? Before, RosterItem? After, string? Version)
{
    public bool Changed => !ReferenceEquals(Before, After);

    /// Nothing was written because the change would have added an item to a roster at Xmpp:Limits:MaxRosterItems.
    public bool Refused { get; init; }
}
