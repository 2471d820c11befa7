namespace Xmpp.Server.Caching;

/// Keeps per-account caches of modules coherent across cluster nodes (issue 17, point 1). A writer calls ChangedAsync
/// after its write is committed; every other node then drops (never patches) that entry, so its next use reloads it
/// from the shared database. On a single node nobody else holds a copy and the in-process implementation does nothing.
public interface ICacheInvalidation
{
    /// True when other nodes may hold copies; a writer may skip work it does only for them.
    bool Shared { get; }

    /// After a committed write: the entry key (an account's user name, a domain) of the cache named cache changed.
    ValueTask ChangedAsync(string cache, string key);

    /// Calls drop with the key of an entry another node changed, or with null when every entry must go (messages may
    /// have been missed). Called on a pool thread; drop must be quick and must not throw.
    void Subscribe(string cache, Action<string?> drop);
}
