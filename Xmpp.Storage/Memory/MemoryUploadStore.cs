namespace Xmpp.Storage.Memory;

internal sealed class MemoryUploadStore : IUploadStore
{
    private readonly Dictionary<string, UploadRecord> _records = new(StringComparer.Ordinal);

    public ValueTask<bool> AddAsync(UploadRecord record)
    {
        lock (_records) return ValueTask.FromResult(_records.TryAdd(record.Id, record));
    }

    public ValueTask<UploadRecord?> GetAsync(string id)
    {
        lock (_records) return ValueTask.FromResult(_records.GetValueOrDefault(id));
    }

    public ValueTask<bool> DeleteAsync(string id)
    {
        lock (_records) return ValueTask.FromResult(_records.Remove(id));
    }

    public ValueTask<long> UsedBytesAsync(string owner)
    {
        lock (_records) return ValueTask.FromResult(_records.Values.Where(r => r.Owner == owner).Sum(r => r.Size));
    }

    public ValueTask<IReadOnlyList<UploadRecord>> ListByOwnerAsync(string owner)
    {
        lock (_records)
        {
            IReadOnlyList<UploadRecord> list = _records.Values.Where(r => r.Owner == owner).OrderBy(r => r.Created).ThenBy(r => r.Id, StringComparer.Ordinal).ToArray();
            return ValueTask.FromResult(list);
        }
    }

    public ValueTask<IReadOnlyList<UploadRecord>> ListCreatedBeforeAsync(DateTimeOffset before, int limit)
    {
        lock (_records)
        {
            IReadOnlyList<UploadRecord> list = _records.Values.Where(r => r.Created < before)
                .OrderBy(r => r.Created).ThenBy(r => r.Id, StringComparer.Ordinal).Take(limit).ToArray();
            return ValueTask.FromResult(list);
        }
    }
}
