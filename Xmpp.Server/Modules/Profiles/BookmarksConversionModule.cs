// XEP-0411: Bookmarks Conversion, and XEP-0402 §5.3 compatibility with XEP-0048 bookmarks.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Pep;

namespace Xmpp.Server.Modules.Profiles;

/// Keeps three copies of a user's room bookmarks in step: XEP-0048 &lt;storage/&gt; in private XML (XEP-0049), the same
/// element as the 'current' item of the 'storage:bookmarks' PEP node (XEP-0411), and one XEP-0402 item per room in
/// 'urn:xmpp:bookmarks:1'. A write to any of them rewrites the other two; the writes this module makes are not
/// converted again. All PEP copies are private (whitelist), as XEP-0411 §5 and XEP-0402 §5 require.
[Xep("XEP-0411", "1.1.0", "private XML bookmarks and the storage:bookmarks PEP node kept in step")]
[Xep("XEP-0402", "1.2.0", "§5.3 compat: private XML and storage:bookmarks PEP bookmarks mirrored into urn:xmpp:bookmarks:1")]
public sealed class BookmarksConversionModule(IPepService pep, IPrivateStorage privateXml, ServedDomains domains) : IXmppModule
{
    /// XEP-0048 §3.3: the single item of the storage:bookmarks node.
    public const string LegacyItemId = "current";

    private static readonly AsyncLocal<bool> Converting = new();

    public void Register(IModuleBuilder module)
    {
        module.AccountFeature(Ns.BookmarksConversion);
        module.AccountFeature(Ns.BookmarksCompat);
        module.AccountFeature(Ns.BookmarksCompat + "-pep");
        privateXml.OnChange(PrivateChangedAsync);
        pep.OnChange(Ns.LegacyBookmarks, LegacyPepChangedAsync);
        pep.OnChange(Ns.Bookmarks, Bookmarks2ChangedAsync);
    }

    private async ValueTask PrivateChangedAsync(string user, Element fragment)
    {
        if (Converting.Value || !fragment.Is("storage", Ns.LegacyBookmarks)) return;
        Converting.Value = true;
        var owner = Jid.Create(user, domains.Default);
        // XEP-0411 §3: a legacy client's change notifies the subscribers of storage:bookmarks.
        await PrivateNodeOptions.PublishAsync(pep, owner, Ns.LegacyBookmarks, LegacyItemId, fragment);
        await MirrorToBookmarks2Async(owner, fragment);
    }

    private async ValueTask LegacyPepChangedAsync(PepChange change)
    {
        if (Converting.Value || change.Kind != PepChangeKind.Published) return;
        if (change.Item!.Payload is not { } storage || !storage.Is("storage", Ns.LegacyBookmarks)) return;
        Converting.Value = true;
        await privateXml.SetAsync(change.Owner.Local!, storage);
        await MirrorToBookmarks2Async(change.Owner, storage);
    }

    /// A XEP-0402 item changed: the XEP-0048 storage is rebuilt from all items, keeping its URL bookmarks, which
    /// XEP-0402 §1 leaves out.
    private async ValueTask Bookmarks2ChangedAsync(PepChange change)
    {
        if (Converting.Value) return;
        Converting.Value = true;
        var user = change.Owner.Local!;
        var storage = new Element("storage", Ns.LegacyBookmarks);
        foreach (var item in await pep.GetItemsAsync(change.Owner, Ns.Bookmarks))
            if (item.Payload.Is("conference", Ns.Bookmarks)) storage.Add(ToLegacy(item.Id, item.Payload));
        if (await privateXml.GetAsync(user, Ns.LegacyBookmarks) is { } old)
            foreach (var url in old.Elements("url", Ns.LegacyBookmarks)) storage.Add(url.Clone());
        await privateXml.SetAsync(user, storage);
        await PrivateNodeOptions.PublishAsync(pep, change.Owner, Ns.LegacyBookmarks, LegacyItemId, storage);
    }

    /// Publishes each room whose XEP-0402 item differs and retracts the rooms no longer bookmarked.
    private async ValueTask MirrorToBookmarks2Async(Jid owner, Element storage)
    {
        var current = (await pep.GetItemsAsync(owner, Ns.Bookmarks)).ToDictionary(i => i.Id, i => i.Payload, StringComparer.Ordinal);
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var conference in storage.Elements("conference", Ns.LegacyBookmarks))
        {
            // XEP-0402 §3: the item id is the room's JID.
            if (conference.Attr("jid") is not { } room || !Jid.TryParse(room, out var roomJid) || !wanted.Add(roomJid.ToString())) continue;
            var payload = ToBookmarks2(conference);
            if (current.TryGetValue(roomJid.ToString(), out var existing) && SameXml(existing, payload)) continue;
            await PrivateNodeOptions.PublishAsync(pep, owner, Ns.Bookmarks, roomJid.ToString(), payload);
        }
        foreach (var id in current.Keys)
            if (!wanted.Contains(id)) await pep.RetractAsync(owner, Ns.Bookmarks, id);
    }

    private static bool SameXml(Element a, Element b) => ElementWriter.ToBytes(a).AsSpan().SequenceEqual(ElementWriter.ToBytes(b));

    /// XEP-0048 §3.2 conference → XEP-0402 §3.1 conference; 'autojoin' "1" and "true" both mean true.
    private static Element ToBookmarks2(Element legacy)
    {
        var c = new Element("conference", Ns.Bookmarks);
        if (legacy.Attr("name") is { } name) c.SetAttr("name", name);
        if (legacy.Attr("autojoin") is "true" or "1") c.SetAttr("autojoin", "true");
        if (legacy.ChildText("nick", Ns.LegacyBookmarks) is { Length: > 0 } nick) c.Add(new Element("nick", Ns.Bookmarks).SetText(nick));
        if (legacy.ChildText("password", Ns.LegacyBookmarks) is { Length: > 0 } pw) c.Add(new Element("password", Ns.Bookmarks).SetText(pw));
        return c;
    }

    private static Element ToLegacy(string room, Element conference)
    {
        var c = new Element("conference", Ns.LegacyBookmarks).SetAttr("jid", room);
        if (conference.Attr("name") is { } name) c.SetAttr("name", name);
        c.SetAttr("autojoin", conference.Attr("autojoin") is "true" or "1" ? "true" : "false");
        if (conference.ChildText("nick", Ns.Bookmarks) is { Length: > 0 } nick) c.Add(new Element("nick", Ns.LegacyBookmarks).SetText(nick));
        if (conference.ChildText("password", Ns.Bookmarks) is { Length: > 0 } pw) c.Add(new Element("password", Ns.LegacyBookmarks).SetText(pw));
        return c;
    }
}
