using System.Collections.Concurrent;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Mam;

public sealed partial class MamModule
{
    private const string PrefsKey = "mam-prefs";

    /// Preferences are read on every archived message, so they are kept in memory after the first read.
    private readonly ConcurrentDictionary<string, MamPrefs> _prefs = new(StringComparer.Ordinal);
    private long _prefDrops; // entries other nodes changed, counted so a load that overlapped one does not keep its copy

    /// The name under which preference changes are announced to the other nodes of a cluster.
    public const string PrefsCacheName = "mam-prefs";

    // Prefs set on one node decide what every node archives.
    private void SubscribePrefs() => invalidation.Subscribe(PrefsCacheName, user =>
    {
        Interlocked.Increment(ref _prefDrops);
        if (user is null) _prefs.Clear();
        else _prefs.TryRemove(user, out _);
    });

    private async ValueTask<bool> ShouldArchiveAsync(Jid account, Jid contact)
    {
        var prefs = await PrefsOfAsync(account.Local!);
        if (prefs.Listed(contact) is { } listed) return listed;
        return prefs.Default switch
        {
            "always" => true,
            "roster" => await rosters.FindAsync(account.Bare, contact.Bare) is { InRoster: true },
            _ => false,
        };
    }

    private async ValueTask<MamPrefs> PrefsOfAsync(string user)
    {
        if (_prefs.TryGetValue(user, out var cached)) return cached;
        long drops = Volatile.Read(ref _prefDrops);
        MamPrefs? prefs = null;
        if (await storage.KeyValue.GetAsync(user, PrefsKey) is { } bytes)
            prefs = MamPrefs.Parse(StoredStanza.Parse(bytes), out _);
        prefs ??= new MamPrefs(Options.DefaultMode, [], []);
        var kept = _prefs.GetOrAdd(user, prefs);
        if (Volatile.Read(ref _prefDrops) != drops) _prefs.TryRemove(new KeyValuePair<string, MamPrefs>(user, kept));
        return kept;
    }

    /// XEP-0441: a get returns the preferences, a set replaces them and returns what was stored.
    private async ValueTask PrefsAsync(IqContext c)
    {
        var user = c.From.Local!;
        if (c.IsGet)
        {
            c.Result((await PrefsOfAsync(user)).ToElement());
            return;
        }
        var prefs = MamPrefs.Parse(c.Payload, out var problem);
        if (prefs is null)
        {
            c.Error(StanzaErrors.BadRequest, problem);
            return;
        }
        var element = prefs.ToElement();
        await storage.KeyValue.SetAsync(user, PrefsKey, ElementWriter.ToBytes(element));
        _prefs[user] = prefs;
        await invalidation.ChangedAsync(PrefsCacheName, user);
        c.Result(element);
    }
}
