using System.Security.Cryptography;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0398: alice's avatar moves between PEP (XEP-0084) and her vCard (XEP-0054/0153) in both directions.
public sealed partial class PepModuleTests
{
    private static readonly byte[] Png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    private static string PngHash => Convert.ToHexStringLower(SHA1.HashData(Png));

    private static async Task PublishPepAvatar(TestClient c)
    {
        var data = await Publish(c, Ns.AvatarData, $"<data xmlns='{Ns.AvatarData}'>{Convert.ToBase64String(Png)}</data>", PngHash);
        Assert.That(data.Attr("type"), Is.EqualTo("result"), data.ToString());
        var meta = await Publish(c, Ns.AvatarMetadata,
            $"<metadata xmlns='{Ns.AvatarMetadata}'><info bytes='{Png.Length}' id='{PngHash}' type='image/png'/></metadata>", PngHash);
        Assert.That(meta.Attr("type"), Is.EqualTo("result"), meta.ToString());
    }

    private static async Task<Element> VCardOf(TestClient asker, string? of = null)
    {
        var r = await asker.IqAsync($"<iq type='get'{(of is null ? "" : $" to='{of}'")}><vCard xmlns='{Ns.VCard}'/></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        return r.Child("vCard", Ns.VCard)!;
    }

    [Test]
    public async Task A_pep_avatar_becomes_the_vcard_photo_and_the_presence_hash_contacts_see()
    {
        await using var alice = await Online("alice", "pc");
        await using var bob = await Online("bob", "pc");
        var features = (await alice.IqAsync($"<iq type='get' to='alice@localhost'><query xmlns='{Ns.DiscoInfo}'/></iq>"))
            .Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
        Assert.That(features, Does.Contain(Ns.PepVCardConversion));

        await alice.SendAsync($"<iq type='set' id='v0'><vCard xmlns='{Ns.VCard}'><FN>Alice</FN></vCard></iq>");
        await alice.ReceiveAsync(e => e.Attr("id") == "v0");
        await PublishPepAvatar(alice);

        var vcard = await VCardOf(bob, "alice@localhost");
        Assert.That(vcard.ChildText("FN", Ns.VCard), Is.EqualTo("Alice"), "the rest of the vCard is kept");
        var photo = vcard.Child("PHOTO", Ns.VCard)!;
        Assert.That(photo.ChildText("TYPE", Ns.VCard), Is.EqualTo("image/png"));
        Assert.That(Convert.FromBase64String(photo.ChildText("BINVAL", Ns.VCard)!), Is.EqualTo(Png));

        // XEP-0153: presence without an update element gets the hash, and it matches the PEP avatar id.
        await alice.SendAsync("<presence><show>away</show></presence>");
        var p = await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == alice.Jid!.ToString() && e.ChildText("show", Ns.Client) == "away");
        Assert.That(p.Child("x", Ns.VCardUpdate)?.ChildText("photo", Ns.VCardUpdate), Is.EqualTo(PngHash), p.ToString());

        // Disabling the avatar (XEP-0084 §4.5: empty metadata) removes the PHOTO.
        await Publish(alice, Ns.AvatarMetadata, $"<metadata xmlns='{Ns.AvatarMetadata}'/>");
        Assert.That((await VCardOf(alice)).Child("PHOTO", Ns.VCard), Is.Null);
    }

    [Test]
    public async Task A_vcard_photo_is_published_to_the_pep_avatar_nodes_once()
    {
        await using var desktop = await Online("alice", "desktop", Ns.AvatarMetadata);
        await using var phone = await Online("alice", "phone");
        await using var bob = await Online("bob", "pc");

        var set = $"<vCard xmlns='{Ns.VCard}'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>{Convert.ToBase64String(Png)}</BINVAL></PHOTO></vCard>";
        var r = await phone.IqAsync($"<iq type='set'>{set}</iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());

        var evt = await desktop.ReceiveAsync(Event(Ns.AvatarMetadata));
        var info = evt.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!
            .Child("metadata", Ns.AvatarMetadata)!.Child("info", Ns.AvatarMetadata)!;
        Assert.That(info.Attr("id"), Is.EqualTo(PngHash));
        Assert.That(info.Attr("bytes"), Is.EqualTo(Png.Length.ToString()));
        Assert.That(info.Attr("type"), Is.EqualTo("image/png"));

        var data = (await Items(bob, "alice@localhost", Ns.AvatarData)).Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Child("item", Ns.PubSub)!;
        Assert.That(data.Attr("id"), Is.EqualTo(PngHash));
        Assert.That(Convert.FromBase64String(data.ChildText("data", Ns.AvatarData)!), Is.EqualTo(Png));

        // The same photo again changes nothing in PEP; and the conversion did not write back into the vCard.
        await phone.IqAsync($"<iq type='set'>{set}</iq>");
        Assert.That(await desktop.TryReceiveAsync(Event(Ns.AvatarMetadata), Quiet), Is.Null);
        Assert.That((await VCardOf(phone)).ChildText("FN", Ns.VCard), Is.EqualTo("Alice"));

        // A vCard without PHOTO disables the PEP avatar.
        await phone.IqAsync($"<iq type='set'><vCard xmlns='{Ns.VCard}'><FN>Alice</FN></vCard></iq>");
        var off = await desktop.ReceiveAsync(Event(Ns.AvatarMetadata));
        Assert.That(off.Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!
            .Child("metadata", Ns.AvatarMetadata)!.IsEmpty, Is.True, off.ToString());
    }
}

public sealed partial class PepModuleTests
{
    [Test]
    public async Task A_pep_avatar_too_large_for_a_vcard_stays_pep_only_and_leaves_the_vcard_alone()
    {
        await using var alice = await Online("alice", "pc");
        await alice.IqAsync($"<iq type='set'><vCard xmlns='{Ns.VCard}'><FN>Alice</FN></vCard></iq>");
        var big = new byte[100_000];
        new Random(7).NextBytes(big);
        var id = Convert.ToHexStringLower(SHA1.HashData(big));
        var data = await Publish(alice, Ns.AvatarData, $"<data xmlns='{Ns.AvatarData}'>{Convert.ToBase64String(big)}</data>", id);
        Assert.That(data.Attr("type"), Is.EqualTo("result"), data.ToString());
        var meta = await Publish(alice, Ns.AvatarMetadata, $"<metadata xmlns='{Ns.AvatarMetadata}'><info bytes='{big.Length}' id='{id}' type='image/png'/></metadata>", id);
        Assert.That(meta.Attr("type"), Is.EqualTo("result"), meta.ToString());

        var vcard = await VCardOf(alice);
        Assert.That(vcard.ChildText("FN", Ns.VCard), Is.EqualTo("Alice"));
        Assert.That(vcard.Child("PHOTO", Ns.VCard), Is.Null);
    }
}
