// XEP-0054: vcard-temp, with the server side of XEP-0153 vCard-based avatars.
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Presence;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Profiles;

/// Stores each account's vCard whole and answers for it, and stamps the avatar hash of that vCard's PHOTO into the
/// user's available presence when the client left it out, so contacts of a client that never fetched its own
/// vCard still learn the avatar.
[Xep("XEP-0054", "1.2")]
[Xep("XEP-0153", "1.1", "the server adds the photo hash to presence that carries none")]
public sealed class VCardModule(IStorage storage, Caching.ICacheInvalidation invalidation, ILogger<VCardModule> logger)
    : IXmppModule, IVCardService
{
    /// The name under which vCard changes are announced to the other nodes of a cluster.
    public const string CacheName = "vcard";

    public const string Key = "vcard";

    /// Large enough for a vCard with a typical avatar photo, small enough that one account cannot hoard space.
    public const int MaxBytes = 128 * 1024;

    /// Before the presence module, which takes the stanza and broadcasts it.
    public const int HookOrder = PresenceModule.HookOrder - 100;

    // Per account: the avatar hash of the stored vCard ("" for none), loaded at the first presence, so presence
    // costs no storage read.
    // A new avatar published through one node must change the hash every node stamps: another node's change drops
    // the entry, counted so that a load overlapping it does not keep what it read.
    private readonly ConcurrentDictionary<string, string> _photoHashes = new(StringComparer.Ordinal);
    private long _drops;
    private readonly List<Func<string, Element, ValueTask>> _handlers = [];

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.VCard);
        module.Iq(IqTarget.Self, "vCard", Ns.VCard, OwnAsync);
        module.Iq(IqTarget.Account, "vCard", Ns.VCard, OtherAsync);
        module.Hook(HookPoint.OutboundPresence, HookOrder, AddAvatarHashAsync);
        module.OnAccountDeleted(async user =>
        {
            _photoHashes.TryRemove(user, out _);
            await storage.KeyValue.DeleteAsync(user, Key);
            await invalidation.ChangedAsync(CacheName, user);
        });
        invalidation.Subscribe(CacheName, user =>
        {
            Interlocked.Increment(ref _drops);
            if (user is null) _photoHashes.Clear();
            else _photoHashes.TryRemove(user, out _);
        });
    }

    private async ValueTask OwnAsync(IqContext c)
    {
        var user = c.From.Local!;
        if (c.IsGet)
        {
            // XEP-0054 §3.1: with no vCard stored, an empty <vCard/> is one of the two allowed answers.
            c.Result(await LoadAsync(user) ?? new Element("vCard", Ns.VCard));
            return;
        }
        // XEP-0054 §3.2: the set replaces the whole vCard; there are no partial updates.
        var vcard = c.Payload.Clone();
        var bytes = ElementWriter.ToBytes(vcard);
        if (bytes.Length > MaxBytes)
        {
            c.Error(StanzaErrors.NotAcceptable, $"The vCard is larger than {MaxBytes / 1024} KiB");
            return;
        }
        await StoreAsync(user, vcard, bytes);
        c.Result();
    }

    public ValueTask<Element?> GetAsync(string user) => LoadAsync(user);

    public async ValueTask<bool> SetAsync(string user, Element vcard)
    {
        var bytes = ElementWriter.ToBytes(vcard);
        if (bytes.Length > MaxBytes) return false;
        await StoreAsync(user, vcard, bytes);
        return true;
    }

    public void OnChange(Func<string, Element, ValueTask> handler)
    {
        lock (_handlers) _handlers.Add(handler);
    }

    private async ValueTask StoreAsync(string user, Element vcard, byte[] bytes)
    {
        if (vcard.IsEmpty) await storage.KeyValue.DeleteAsync(user, Key);
        else await storage.KeyValue.SetAsync(user, Key, bytes);
        _photoHashes[user] = PhotoHash(vcard);
        await invalidation.ChangedAsync(CacheName, user);
        Func<string, Element, ValueTask>[] handlers;
        lock (_handlers) handlers = [.. _handlers];
        // Before the client's result, so that when the set is acknowledged every converted copy is in place.
        foreach (var handler in handlers)
        {
            try { await handler(user, vcard); }
            catch (Exception ex) { logger.LogError(ex, "A vCard change handler failed for {User}", user); }
        }
    }

    /// XEP-0054 §3.3: anyone may read an account's vCard (it is public); only its owner may change it (§3.2).
    private async ValueTask OtherAsync(IqContext c)
    {
        if (!c.IsGet)
        {
            c.Error(StanzaErrors.Forbidden);
            return;
        }
        // §3.3: "If no vCard exists ... the server MUST return a stanza error" (unlike §3.1 for one's own).
        if (await LoadAsync(c.To.Local!) is { } vcard) c.Result(vcard);
        else c.Error(StanzaErrors.ItemNotFound);
    }

    /// XEP-0153 §4.1: a client that supports avatars always sends the update element; one that sent none gets the
    /// hash of the stored photo added, so contacts see the avatar. What a client did send is left alone.
    private async ValueTask<bool> AddAvatarHashAsync(StanzaContext c)
    {
        if (c.Type is not null || c.Origin is not { } session) return false;
        if (c.Stanza.Child("x", Ns.VCardUpdate) is not null) return false;
        var user = session.Jid.Local!;
        if (!_photoHashes.TryGetValue(user, out var hash))
        {
            long drops = Volatile.Read(ref _drops);
            hash = PhotoHash(await LoadAsync(user));
            if (_photoHashes.TryAdd(user, hash) && Volatile.Read(ref _drops) != drops)
                _photoHashes.TryRemove(new KeyValuePair<string, string>(user, hash));
        }
        if (hash.Length > 0)
            c.Stanza.Add(new Element("x", Ns.VCardUpdate).Add(new Element("photo", Ns.VCardUpdate).SetText(hash)));
        return false;
    }

    /// The SHA-1 of the decoded photo (XEP-0153 §3.1), lower-case hex; "" when there is no embedded photo.
    public static string PhotoHash(Element? vcard) =>
        PhotoBytes(vcard) is { } bytes ? Convert.ToHexStringLower(SHA1.HashData(bytes)) : "";

    /// The decoded embedded photo, or null when there is none or its base64 is broken.
    public static byte[]? PhotoBytes(Element? vcard)
    {
        var binval = vcard?.Child("PHOTO", Ns.VCard)?.ChildText("BINVAL", Ns.VCard);
        if (string.IsNullOrWhiteSpace(binval)) return null;
        // XEP-0153 §4.6: whitespace in the base64 data (line breaks every 76 characters) is ignored.
        var compact = new StringBuilder(binval.Length);
        foreach (var ch in binval)
            if (!char.IsWhiteSpace(ch)) compact.Append(ch);
        try
        {
            var bytes = Convert.FromBase64String(compact.ToString());
            return bytes.Length == 0 ? null : bytes;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private async ValueTask<Element?> LoadAsync(string user)
    {
        var bytes = await storage.KeyValue.GetAsync(user, Key);
        if (bytes is null) return null;
        try
        {
            return StoredStanza.Parse(bytes);
        }
        catch (Exception ex) when (ex is FormatException or XmppStreamException)
        {
            logger.LogError(ex, "The stored vCard of {User} could not be parsed", user);
            return null;
        }
    }
}
