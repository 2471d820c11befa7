// XEP-0049: Private XML Storage.
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Profiles;

/// Lets a user keep XML fragments on the server, one set per namespace (XEP-0048 bookmarks, client preferences).
/// All of an account's fragments live in one stored document, so the size limit covers the account as a whole.
[Xep("XEP-0049", "1.2")]
public sealed class PrivateStorageModule(IStorage storage, ILogger<PrivateStorageModule> logger) : IXmppModule, IPrivateStorage
{
    public const string Key = "private";

    /// The most private XML one account may keep, over all namespaces together.
    public const int MaxBytes = 128 * 1024;

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly List<Func<string, Element, ValueTask>> _handlers = [];

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Private);
        module.Iq(IqTarget.Self, "query", Ns.Private, OwnAsync);
        // XEP-0049 §3: private data of another user is forbidden, for reading and writing alike.
        module.Iq(IqTarget.Account, "query", Ns.Private, c =>
        {
            c.Error(StanzaErrors.Forbidden);
            return ValueTask.CompletedTask;
        });
        module.OnAccountDeleted(async user =>
        {
            await storage.KeyValue.DeleteAsync(user, Key);
            _locks.TryRemove(user, out _);
        });
    }

    /// XEP-0049 §2.3: "namespaces beginning with 'jabber:' or 'http://jabber.org/', as well as 'vcard-temp'" are
    /// reserved; refusing them is optional, and we do, so nobody hides data behind a protocol namespace.
    public static bool IsReserved(string ns) =>
        ns.Length == 0
        || ns.StartsWith("jabber:", StringComparison.Ordinal)
        || ns.StartsWith("http://jabber.org/", StringComparison.Ordinal)
        || ns == Ns.VCard;

    private async ValueTask OwnAsync(IqContext c)
    {
        var children = c.Payload.Elements().ToList();
        if (children.Exists(e => IsReserved(e.Namespace)))
        {
            c.Error(StanzaErrors.NotAcceptable, "This namespace is reserved");
            return;
        }
        var user = c.From.Local!;
        if (c.IsGet) await GetAsync(c, user, children);
        else await SetAsync(c, user, children);
    }

    private async ValueTask GetAsync(IqContext c, string user, List<Element> children)
    {
        // §2.3: a get names exactly one namespace; an empty one is "Bad Format" (bad-request in XEP-0086 terms).
        if (children.Count != 1)
        {
            c.Error(StanzaErrors.BadRequest, children.Count == 0 ? "Name the namespace to retrieve" : "Retrieve one namespace at a time");
            return;
        }
        var wanted = children[0];
        var query = new Element("query", Ns.Private);
        var stored = await LoadAsync(user);
        foreach (var fragment in stored.Elements())
            if (fragment.Namespace == wanted.Namespace) query.Add(fragment.Clone());
        // Nothing stored: the request's element comes back empty, the answer clients expect for "no data".
        if (query.IsEmpty) query.Add(new Element(wanted.Name, wanted.Namespace));
        c.Result(query);
    }

    private async ValueTask SetAsync(IqContext c, string user, List<Element> children)
    {
        // §2.3: a set without a child element is answered with not-acceptable.
        if (children.Count == 0)
        {
            c.Error(StanzaErrors.NotAcceptable, "Nothing to store");
            return;
        }
        if (!await StoreAsync(user, children))
        {
            c.Error(StanzaErrors.NotAcceptable, $"Private storage is limited to {MaxBytes / 1024} KiB per account");
            return;
        }
        c.Result();
    }

    public async ValueTask<Element?> GetAsync(string user, string ns) =>
        (await LoadAsync(user)).Elements().FirstOrDefault(e => e.Namespace == ns)?.Clone();

    public ValueTask<bool> SetAsync(string user, Element fragment) => StoreAsync(user, [fragment]);

    public void OnChange(Func<string, Element, ValueTask> handler)
    {
        lock (_handlers) _handlers.Add(handler);
    }

    private async ValueTask<bool> StoreAsync(string user, List<Element> children)
    {
        var namespaces = children.Select(e => e.Namespace).ToHashSet(StringComparer.Ordinal);
        var gate = _locks.GetOrAdd(user, static _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        try
        {
            // Each namespace in the set replaces what was stored under it; other namespaces are kept. One step of the
            // store, since a resource on another node may store another namespace at the same moment.
            bool tooLarge = false;
            await storage.KeyValue.UpdateAsync(user, Key, stored =>
            {
                var next = new Element("query", Ns.Private);
                foreach (var fragment in Parse(user, stored).Elements())
                    if (!namespaces.Contains(fragment.Namespace)) next.Add(fragment.Clone());
                foreach (var child in children) next.Add(child.Clone());
                var bytes = ElementWriter.ToBytes(next);
                tooLarge = bytes.Length > MaxBytes;
                return tooLarge ? stored : bytes;
            });
            if (tooLarge) return false;
        }
        finally
        {
            gate.Release();
        }
        Func<string, Element, ValueTask>[] handlers;
        lock (_handlers) handlers = [.. _handlers];
        // Before the client's result, so that an acknowledged set has reached every converted copy.
        foreach (var child in children)
            foreach (var handler in handlers)
            {
                try { await handler(user, child); }
                catch (Exception ex) { logger.LogError(ex, "A private storage change handler failed for {User}", user); }
            }
        return true;
    }

    private async ValueTask<Element> LoadAsync(string user) => Parse(user, await storage.KeyValue.GetAsync(user, Key));

    private Element Parse(string user, byte[]? bytes)
    {
        if (bytes is null) return new Element("query", Ns.Private);
        try
        {
            return StoredStanza.Parse(bytes);
        }
        catch (Exception ex) when (ex is FormatException or XmppStreamException)
        {
            logger.LogError(ex, "The private XML of {User} could not be parsed", user);
            return new Element("query", Ns.Private);
        }
    }
}
