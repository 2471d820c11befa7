// XEP-0398: User Avatar to vCard-Based Avatars Conversion.
using System.Globalization;
using System.Security.Cryptography;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Pep;

namespace Xmpp.Server.Modules.Profiles;

/// Keeps the two avatar stores in step: an XEP-0084 avatar published over PEP becomes the vCard PHOTO (so vcard-temp
/// clients, MUC and the XEP-0153 presence hash see it), and a PHOTO set with vcard-temp is published to the two
/// XEP-0084 nodes. Each direction skips work the other just did, so the conversions never feed each other.
[Xep("XEP-0398", "1.0.0", "PEP avatar to vCard PHOTO and back")]
public sealed class AvatarConversionModule(IPepService pep, IVCardService vcards, ServedDomains domains) : IXmppModule
{
    // Set while this module itself writes, so the change it causes is not converted back.
    private static readonly AsyncLocal<bool> Converting = new();

    public void Register(IModuleBuilder module)
    {
        module.AccountFeature(Ns.PepVCardConversion);
        pep.OnChange(Ns.AvatarMetadata, MetadataChangedAsync);
        vcards.OnChange(VCardChangedAsync);
    }

    /// XEP-0398 §3.1: new metadata names the avatar by the SHA-1 of its data; the matching data item goes into PHOTO.
    /// Empty metadata (XEP-0084 §4.5, avatar disabled) removes the PHOTO.
    private async ValueTask MetadataChangedAsync(PepChange change)
    {
        if (Converting.Value || change.Kind != PepChangeKind.Published || change.Owner.Local is not { } user) return;
        var infos = change.Item!.Payload.Elements("info", Ns.AvatarMetadata).ToList();
        var vcard = (await vcards.GetAsync(user))?.Clone() ?? new Element("vCard", Ns.VCard);
        if (infos.Count == 0)
        {
            if (vcard.RemoveAll("PHOTO", Ns.VCard) > 0) await WriteVCardAsync(user, vcard);
            return;
        }
        // Only an avatar whose data is in PEP can be embedded; a url-only one (XEP-0084 §4.2.1) cannot.
        foreach (var info in infos)
        {
            if (info.Attr("id") is not { } id || await pep.GetItemAsync(change.Owner, Ns.AvatarData, id) is not { } data) continue;
            if (VCardModule.PhotoHash(vcard) == id) return;
            vcard.RemoveAll("PHOTO", Ns.VCard);
            vcard.Add(new Element("PHOTO", Ns.VCard).Add(
                new Element("TYPE", Ns.VCard).SetText(info.Attr("type") ?? "image/png"),
                new Element("BINVAL", Ns.VCard).SetText(data.Payload.Text.Trim())));
            // An avatar too large for a vCard (VCardModule.MaxBytes) stays PEP-only rather than breaking the vCard.
            await WriteVCardAsync(user, vcard);
            return;
        }
    }

    private async ValueTask WriteVCardAsync(string user, Element vcard)
    {
        Converting.Value = true;
        await vcards.SetAsync(user, vcard);
    }

    /// XEP-0398 §3.2: a PHOTO set with vcard-temp is published as data (item id = SHA-1) and then metadata, the
    /// order XEP-0084 §4.1 gives clients; a vCard without PHOTO disables a PEP avatar the vCard had carried.
    private async ValueTask VCardChangedAsync(string user, Element vcard)
    {
        if (Converting.Value) return;
        var owner = Jid.Create(user, domains.Default);
        var current = await pep.GetItemAsync(owner, Ns.AvatarMetadata);
        var bytes = VCardModule.PhotoBytes(vcard);
        Converting.Value = true;
        if (bytes is null)
        {
            if (current?.Payload.Child("info", Ns.AvatarMetadata) is not null)
                await pep.PublishAsync(owner, Ns.AvatarMetadata, null, new Element("metadata", Ns.AvatarMetadata));
            return;
        }
        var hash = Convert.ToHexStringLower(SHA1.HashData(bytes));
        if (current?.Id == hash) return;
        var type = vcard.Child("PHOTO", Ns.VCard)!.ChildText("TYPE", Ns.VCard)?.Trim();
        var (_, error) = await pep.PublishAsync(owner, Ns.AvatarData, hash,
            new Element("data", Ns.AvatarData).SetText(Convert.ToBase64String(bytes)));
        if (error is not null) return;
        await pep.PublishAsync(owner, Ns.AvatarMetadata, hash, new Element("metadata", Ns.AvatarMetadata).Add(
            new Element("info", Ns.AvatarMetadata)
                .SetAttr("bytes", bytes.Length.ToString(CultureInfo.InvariantCulture))
                .SetAttr("id", hash)
                .SetAttr("type", string.IsNullOrEmpty(type) ? "image/png" : type)));
    }
}
