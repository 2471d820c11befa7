namespace Xmpp.Storage.Memory;

internal sealed class MemoryArchiveStore : IArchiveStore
{
    private readonly Dictionary<string, List<ArchiveRecord>> _owners = new(StringComparer.Ordinal);
    private long _lastId;

    public ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null)
    {
        var bytes = payload.ToArray();
        lock (_owners)
        {
            var id = ++_lastId;
            if (!_owners.TryGetValue(owner, out var records))
                _owners[owner] = records = [];
            // Time never runs backwards within an owner's archive (see IArchiveStore).
            if (records.Count > 0 && records[^1].Stamp > stamp)
                stamp = records[^1].Stamp;
            // Ids are taken under the lock, so each owner's list stays sorted by id.
            records.Add(new ArchiveRecord(id, owner, stamp, with, bytes, stanzaId));
            return ValueTask.FromResult(id);
        }
    }

    public ValueTask<ArchivePage> QueryAsync(ArchiveQuery query)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(query.Max);
        HashSet<string>? ids = query.StanzaIds is null ? null : new(query.StanzaIds, StringComparer.Ordinal);
        List<ArchiveRecord> matching;
        lock (_owners)
        {
            if (!_owners.TryGetValue(query.Owner, out var records))
                return ValueTask.FromResult(new ArchivePage([], true, 0));
            matching = records.Where(r =>
                    (query.With is null || r.With == query.With)
                    && (query.Start is null || r.Stamp >= query.Start)
                    && (query.End is null || r.Stamp <= query.End)
                    && (ids is null || (r.StanzaId is not null && ids.Contains(r.StanzaId))))
                .ToList();
        }

        // The RSM cursors narrow the window but not the result set whose size <count/> reports (XEP-0059 §2.6).
        var window = matching.Where(r =>
                (query.AfterId is null || r.Id > query.AfterId)
                && (query.BeforeId is null || r.Id < query.BeforeId))
            .ToList();
        var complete = window.Count <= query.Max;
        var page = query.Reverse
            ? window.Skip(Math.Max(0, window.Count - query.Max)).ToList()
            : window.Take(query.Max).ToList();
        return ValueTask.FromResult(new ArchivePage(page.Select(Copy).ToArray(), complete, matching.Count));
    }

    public ValueTask<long?> FindIdAsync(string owner, string stanzaId)
    {
        lock (_owners)
        {
            if (_owners.TryGetValue(owner, out var records))
                foreach (var record in records)
                    if (record.StanzaId == stanzaId)
                        return ValueTask.FromResult<long?>(record.Id);
            return ValueTask.FromResult<long?>(null);
        }
    }

    public ValueTask<bool> ReplaceAsync(string owner, long id, ReadOnlyMemory<byte> payload)
    {
        var bytes = payload.ToArray();
        lock (_owners)
        {
            if (!_owners.TryGetValue(owner, out var records))
                return ValueTask.FromResult(false);
            var index = records.FindIndex(r => r.Id == id);
            if (index < 0)
                return ValueTask.FromResult(false);
            records[index] = records[index] with { Payload = bytes };
            return ValueTask.FromResult(true);
        }
    }

    public ValueTask<int> DeleteThroughAsync(string owner, long id)
    {
        lock (_owners)
        {
            if (!_owners.TryGetValue(owner, out var records))
                return ValueTask.FromResult(0);
            var deleted = records.RemoveAll(r => r.Id <= id);
            if (records.Count == 0)
                _owners.Remove(owner);
            return ValueTask.FromResult(deleted);
        }
    }

    public ValueTask<int> CountAsync(string owner)
    {
        lock (_owners)
        {
            return ValueTask.FromResult(_owners.TryGetValue(owner, out var records) ? records.Count : 0);
        }
    }

    public ValueTask DeleteAllAsync(string owner)
    {
        lock (_owners)
        {
            _owners.Remove(owner);
        }
        return ValueTask.CompletedTask;
    }

    private static ArchiveRecord Copy(ArchiveRecord record) => record with { Payload = record.Payload.ToArray() };
}
