namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    public async ValueTask<ArchivePage> QueryAsync(ArchiveQuery query)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(query.Max);
        try
        {
            return Page(query);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // A record replaced or deleted while the page was read can take its segment file with it; read again.
            await Task.Yield();
            return Page(query);
        }
    }

    public ValueTask<long?> FindIdAsync(string owner, string stanzaId)
    {
        var entries = Live(owner);
        for (var i = entries.Count - 1; i >= 0; i--)
            if (entries[i].StanzaId == stanzaId)
                return ValueTask.FromResult<long?>(entries[i].Id);
        return ValueTask.FromResult<long?>(null);
    }

    public ValueTask<int> CountAsync(string owner) => ValueTask.FromResult(Live(owner).Count);

    private ArchivePage Page(ArchiveQuery query)
    {
        var entries = Live(query.Owner);
        HashSet<string>? stanzaIds = query.StanzaIds is null ? null : new(query.StanzaIds, StringComparer.Ordinal);
        long start = query.Start?.UtcTicks ?? long.MinValue, end = query.End?.UtcTicks ?? long.MaxValue;
        long after = query.AfterId ?? long.MinValue, before = query.BeforeId ?? long.MaxValue;
        // The RSM cursors narrow the window but not the result set whose size <count/> reports (XEP-0059 §2.6).
        var total = 0;
        var window = new List<LogEntry>();
        foreach (var entry in entries)
        {
            if ((query.With is not null && entry.With != query.With) || entry.Stamp < start || entry.Stamp > end
                || (stanzaIds is not null && (entry.StanzaId is null || !stanzaIds.Contains(entry.StanzaId))))
                continue;
            total++;
            if (entry.Id > after && entry.Id < before)
                window.Add(entry);
        }
        var count = Math.Min(query.Max, window.Count);
        var first = query.Reverse ? window.Count - count : 0;
        var records = new ArchiveRecord[count];
        for (var i = 0; i < count; i++)
        {
            var entry = window[first + i];
            records[i] = new ArchiveRecord(entry.Id, query.Owner, new DateTimeOffset(entry.Stamp, TimeSpan.Zero), entry.With,
                ReadPayload(entry.Location), entry.StanzaId);
        }
        return new ArchivePage(records, window.Count <= query.Max, total);
    }

    private byte[] ReadPayload(LogLocation location)
    {
        if (!LogRecord.TryDecode(_segments.Read(location), out var record))
            throw new InvalidDataException($"The archive record at {location} of '{_name}' does not match its checksum.");
        return record.Payload.ToArray();
    }

    // The owner's records that are not deleted, in id order: the indexed blocks, then what the indexer has not moved
    // yet. The memory tail is taken first: whatever the indexer moves meanwhile is then in the blocks as well, and the
    // tail's copy wins (an owner's ids only grow, so every block entry older than the tail's first is not in it).
    private List<LogEntry> Live(string owner)
    {
        LogEntry[] tail = [];
        Dictionary<long, LogLocation>? replaced = null;
        var deletedThrough = 0L;
        lock (_gate)
        {
            if (_owners.TryGetValue(owner, out var state))
            {
                tail = state.Tail.ToArray();
                replaced = state.Replaced.Count > 0 ? new(state.Replaced) : null;
                deletedThrough = state.DeletedThrough;
            }
        }
        var firstInTail = tail.Length > 0 ? tail[0].Id : long.MaxValue;
        var entries = new List<LogEntry>();
        for (var attempt = 1; ; attempt++)
        {
            var (file, blocks) = _index.Snapshot(owner);
            try
            {
                foreach (var block in blocks)
                    if (block.LastId > deletedThrough && block.FirstId < firstInTail)
                        foreach (var entry in IndexFile.ReadBlock(file, block))
                            if (entry.Id > deletedThrough && entry.Id < firstInTail)
                                entries.Add(entry);
                break;
            }
            catch (ObjectDisposedException) when (attempt < 3)
            {
                // A compaction replaced the index file since the snapshot: read from the new one.
                entries.Clear();
            }
        }
        foreach (var entry in tail)
            if (entry.Id > deletedThrough)
                entries.Add(entry);
        if (replaced is not null)
            for (var i = 0; i < entries.Count; i++)
                if (replaced.TryGetValue(entries[i].Id, out var location))
                    entries[i] = entries[i] with { Location = location };
        return entries;
    }

    private LogEntry? Find(string owner, long id)
    {
        foreach (var entry in Live(owner))
            if (entry.Id == id)
                return entry;
        return null;
    }

    // The segment of each live record of the owner with an id up to through: one per record a deletion removes.
    private List<int> DeletedSegments(string owner, long through)
    {
        var segments = new List<int>();
        foreach (var entry in Live(owner))
        {
            if (entry.Id > through)
                break;
            segments.Add(entry.Location.Segment);
        }
        return segments;
    }

    // The newest stamp among the owner's records, from the memory tail or else the last index block.
    private long NewestStamp(string owner)
    {
        lock (_gate)
        {
            if (_owners.TryGetValue(owner, out var state) && state.Tail.Count > 0)
                return state.Tail[^1].Stamp;
        }
        return _index.LastStamp(owner) ?? long.MinValue;
    }
}
