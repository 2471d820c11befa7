namespace Xmpp.Storage;

// A user's whole roster (items in ordinal JID order, pending-only records included) and its version.
public sealed record RosterSnapshot(string Version, IReadOnlyList<RosterItem> Items);
