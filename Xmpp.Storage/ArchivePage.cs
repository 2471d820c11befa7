namespace Xmpp.Storage;

// One page of an archive query in ascending Id order. Complete says no further record matches in the paging direction;
// TotalCount is the size of the whole filtered set, ignoring the AfterId/BeforeId cursors (XEP-0059 §2.6 <count/>).
public sealed record ArchivePage(IReadOnlyList<ArchiveRecord> Records, bool Complete, int TotalCount);
