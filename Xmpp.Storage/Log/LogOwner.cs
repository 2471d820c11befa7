namespace Xmpp.Storage.Log;

// What an archive log holds in memory for one owner until the indexer has moved it into the index file's blocks:
// the records appended since (in id order), replaced payloads' new locations, and the deletion watermark.
internal sealed class LogOwner(string name)
{
    public string Name { get; } = name;

    public List<LogEntry> Tail { get; } = [];

    public Dictionary<long, LogLocation> Replaced { get; } = [];

    // The peer of the newest appended record, whose string later entries with the same peer share.
    public string? LastWith { get; set; }

    // Every record with an id up to this one is deleted, in memory at once and in the blocks once indexed.
    public long DeletedThrough { get; set; }

    public long IndexedDeletedThrough { get; set; }

    public bool HasUnindexed => Tail.Count > 0 || Replaced.Count > 0 || IndexedDeletedThrough < DeletedThrough;
}
