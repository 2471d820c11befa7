using System.Text.Json;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Push;

/// The push services each account enabled, one small document per account in the key-value store.
public sealed class PushRegistrations(IStorage storage)
{
    private const string Key = "push";
    private readonly SemaphoreSlim _lock = new(1, 1);

    public async ValueTask<IReadOnlyList<PushRegistration>> GetAsync(string user)
    {
        var bytes = await storage.KeyValue.GetAsync(user, Key);
        if (bytes is null) return [];
        try { return JsonSerializer.Deserialize<List<PushRegistration>>(bytes) ?? []; }
        catch (JsonException) { return []; }
    }

    /// Adds or replaces the (jid, node) entry; false when the account already has the maximum of other entries.
    public async ValueTask<bool> EnableAsync(string user, PushRegistration registration, int max)
    {
        await _lock.WaitAsync();
        try
        {
            var list = (await GetAsync(user)).Where(r => !(r.Jid == registration.Jid && r.Node == registration.Node)).ToList();
            if (list.Count >= max) return false;
            list.Add(registration);
            await storage.KeyValue.SetAsync(user, Key, JsonSerializer.SerializeToUtf8Bytes(list));
            return true;
        }
        finally { _lock.Release(); }
    }

    /// Removes the service's entry for the node, or all its entries when node is null; returns how many went.
    public async ValueTask<int> DisableAsync(string user, string jid, string? node)
    {
        await _lock.WaitAsync();
        try
        {
            var all = await GetAsync(user);
            var kept = all.Where(r => r.Jid != jid || (node is not null && r.Node != node)).ToList();
            if (kept.Count == all.Count) return 0;
            if (kept.Count == 0) await storage.KeyValue.DeleteAsync(user, Key);
            else await storage.KeyValue.SetAsync(user, Key, JsonSerializer.SerializeToUtf8Bytes(kept));
            return all.Count - kept.Count;
        }
        finally { _lock.Release(); }
    }

    /// Removes exactly the (jid, node) entry, a null node meaning the entry enabled without one.
    public async ValueTask<bool> DisableExactAsync(string user, string jid, string? node)
    {
        await _lock.WaitAsync();
        try
        {
            var all = await GetAsync(user);
            var kept = all.Where(r => !(r.Jid == jid && r.Node == node)).ToList();
            if (kept.Count == all.Count) return false;
            if (kept.Count == 0) await storage.KeyValue.DeleteAsync(user, Key);
            else await storage.KeyValue.SetAsync(user, Key, JsonSerializer.SerializeToUtf8Bytes(kept));
            return true;
        }
        finally { _lock.Release(); }
    }

    public async ValueTask DeleteAllAsync(string user) => await storage.KeyValue.DeleteAsync(user, Key);
}
