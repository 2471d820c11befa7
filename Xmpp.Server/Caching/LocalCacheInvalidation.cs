namespace Xmpp.Server.Caching;

/// The single-node ICacheInvalidation: every write goes through this process, whose caches the writers update
/// themselves, so there is nobody to tell. Nothing is kept and nothing is called; a write costs one call that returns.
public sealed class LocalCacheInvalidation : ICacheInvalidation
{
    public bool Shared => false;

    public ValueTask ChangedAsync(string cache, string key) => ValueTask.CompletedTask;

    public void Subscribe(string cache, Action<string?> drop) { }
}
