namespace Xmpp.Storage;

// A filter over one owner's archive (With, Start and End inclusive, StanzaIds) plus an RSM window (XEP-0059):
// AfterId/BeforeId are exclusive cursors, Max the page size, Reverse takes the newest Max records (for <before/>).
public sealed record ArchiveQuery(
    string Owner,
    string? With = null,
    DateTimeOffset? Start = null,
    DateTimeOffset? End = null,
    long? AfterId = null,
    long? BeforeId = null,
    int Max = 100,
    bool Reverse = false,
    IReadOnlyList<string>? StanzaIds = null);
