namespace Xmpp.Storage.Memory;

internal sealed class MemoryKeyValueStore : IKeyValueStore
{
    private readonly Dictionary<string, Dictionary<string, byte[]>> _owners = new(StringComparer.Ordinal);

    public ValueTask<byte[]?> GetAsync(string owner, string key)
    {
        lock (_owners)
        {
            var value = _owners.TryGetValue(owner, out var values) ? values.GetValueOrDefault(key) : null;
            return ValueTask.FromResult(value?.ToArray());
        }
    }

    public ValueTask SetAsync(string owner, string key, ReadOnlyMemory<byte> value)
    {
        var copy = value.ToArray();
        lock (_owners)
        {
            if (!_owners.TryGetValue(owner, out var values))
                _owners[owner] = values = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            values[key] = copy;
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> DeleteAsync(string owner, string key)
    {
        lock (_owners)
        {
            return ValueTask.FromResult(_owners.TryGetValue(owner, out var values) && values.Remove(key));
        }
    }

    public ValueTask<IReadOnlyList<KeyValuePair<string, byte[]>>> ListAsync(string owner)
    {
        lock (_owners)
        {
            IReadOnlyList<KeyValuePair<string, byte[]>> list = _owners.TryGetValue(owner, out var values)
                ? values.OrderBy(v => v.Key, StringComparer.Ordinal).Select(v => KeyValuePair.Create(v.Key, v.Value.ToArray())).ToList()
                : [];
            return ValueTask.FromResult(list);
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
}
