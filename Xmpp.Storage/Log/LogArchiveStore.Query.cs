namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    public async ValueTask<ArchivePage> QueryAsync(ArchiveQuery query)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(query.Max);
        await BlockingWork.ToPool(); // the page reads segment and index files synchronously
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

    // A page reads only the index blocks it needs. The count of the whole result set (XEP-0059 §2.6, which the RSM
    // cursors do not narrow) comes from the blocks' entry counts where no filter needs the entries themselves; blocks
    // outside the query's time range are skipped (an owner's stamps never go back in id order, so a block's entries
    // lie between the previous block's last stamp and its own); and the window is filled from its near end only, so
    // paging an archive of a million messages decodes a few blocks, not two thousand.
    private ArchivePage Page(ArchiveQuery query) => RereadAfterCompaction(() => PageOnce(query));

    // A read of index blocks that a compaction overtook (it replaced the index file since the snapshot) is done again
    // from a new snapshot.
    private static T RereadAfterCompaction<T>(Func<T> read)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return read();
            }
            catch (ObjectDisposedException) when (attempt < 3)
            {
            }
        }
    }

    private ArchivePage PageOnce(ArchiveQuery query)
    {
        var (tail, replaced, deletedThrough) = MemoryState(query.Owner);
        var (file, blocks) = _index.Snapshot(query.Owner);
        HashSet<string>? stanzaIds = query.StanzaIds is null ? null : new(query.StanzaIds, StringComparer.Ordinal);
        long start = query.Start?.UtcTicks ?? long.MinValue, end = query.End?.UtcTicks ?? long.MaxValue;
        long after = query.AfterId ?? long.MinValue, before = query.BeforeId ?? long.MaxValue;
        var firstInTail = tail.Length > 0 ? tail[0].Id : long.MaxValue;
        var filtered = query.With is not null || stanzaIds is not null;

        bool Matches(LogEntry entry) =>
            entry.Id > deletedThrough && entry.Stamp >= start && entry.Stamp <= end
            && (query.With is null || entry.With == query.With)
            && (stanzaIds is null || (entry.StanzaId is not null && stanzaIds.Contains(entry.StanzaId)));

        // Position i is blocks[i]; the last position is the memory tail. A block's entries are stamped from the previous
        // block's last stamp (its lowest possible) to its own last stamp.
        var parts = blocks.Length + 1;
        var decoded = new IReadOnlyList<LogEntry>?[parts];
        long Lowest(int i) => i > 0 ? blocks[i - 1].LastStamp : long.MinValue;
        // Nothing in it can match: all deleted, all superseded by the tail, or all outside the time range.
        bool Skipped(int i)
        {
            if (i == blocks.Length) return false;
            var block = blocks[i];
            return block.LastId <= deletedThrough || block.FirstId >= firstInTail || block.LastStamp < start || Lowest(i) > end;
        }
        IReadOnlyList<LogEntry> Entries(int i)
        {
            if (decoded[i] is { } known) return known;
            if (i == blocks.Length) return decoded[i] = tail;
            var entries = new List<LogEntry>();
            foreach (var entry in IndexFile.ReadBlock(file, blocks[i]))
                if (entry.Id < firstInTail)
                    entries.Add(entry);
            return decoded[i] = entries;
        }

        var total = 0;
        for (var i = 0; i < parts; i++)
        {
            if (Skipped(i)) continue;
            if (i < blocks.Length && !filtered)
            {
                // Every entry live and inside the time range: its count is the block's.
                var block = blocks[i];
                if (block.FirstId > deletedThrough && block.LastId < firstInTail && Lowest(i) >= start && block.LastStamp <= end)
                {
                    total += block.Count;
                    continue;
                }
            }
            foreach (var entry in Entries(i))
                if (Matches(entry))
                    total++;
        }

        // The window: up to Max + 1 entries from its near end (one more than a page tells whether it is complete).
        var window = new List<LogEntry>();
        for (var step = 0; step < parts && window.Count <= query.Max; step++)
        {
            var i = query.Reverse ? parts - 1 - step : step;
            if (Skipped(i)) continue;
            if (i < blocks.Length && (blocks[i].LastId <= after || blocks[i].FirstId >= before)) continue;
            var entries = Entries(i);
            for (var k = 0; k < entries.Count && window.Count <= query.Max; k++)
            {
                var entry = entries[query.Reverse ? entries.Count - 1 - k : k];
                if (entry.Id > after && entry.Id < before && Matches(entry))
                    window.Add(entry);
            }
        }
        var complete = window.Count <= query.Max;
        if (!complete) window.RemoveAt(window.Count - 1);
        if (query.Reverse) window.Reverse();
        var records = new ArchiveRecord[window.Count];
        for (var i = 0; i < window.Count; i++)
        {
            var entry = window[i];
            var location = replaced is not null && replaced.TryGetValue(entry.Id, out var moved) ? moved : entry.Location;
            records[i] = new ArchiveRecord(entry.Id, query.Owner, new DateTimeOffset(entry.Stamp, TimeSpan.Zero), entry.With,
                ReadPayload(location), entry.StanzaId);
        }
        return new ArchivePage(records, complete, total);
    }

    // What the writer holds in memory for the owner: entries not yet indexed, replaced payloads, the deletion mark.
    private (LogEntry[] Tail, Dictionary<long, LogLocation>? Replaced, long DeletedThrough) MemoryState(string owner)
    {
        lock (_gate)
        {
            if (!_owners.TryGetValue(owner, out var state)) return ([], null, 0);
            return (state.Tail.ToArray(), state.Replaced.Count > 0 ? new(state.Replaced) : null, state.DeletedThrough);
        }
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
        var (tail, replaced, deletedThrough) = MemoryState(owner);
        var firstInTail = tail.Length > 0 ? tail[0].Id : long.MaxValue;
        var entries = RereadAfterCompaction(() =>
        {
            var (file, blocks) = _index.Snapshot(owner);
            var indexed = new List<LogEntry>();
            foreach (var block in blocks)
                if (block.LastId > deletedThrough && block.FirstId < firstInTail)
                    foreach (var entry in IndexFile.ReadBlock(file, block))
                        if (entry.Id > deletedThrough && entry.Id < firstInTail)
                            indexed.Add(entry);
            return indexed;
        });
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
