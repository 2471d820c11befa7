using System.Security.Cryptography;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Profiles;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0054 vCards and the XEP-0153 avatar hash the server adds to presence, played by Juliet, Romeo and Nurse.
[TestFixture]
public sealed class VCardModuleTests
{
    private static readonly byte[] Photo = Enumerable.Range(0, 300).Select(i => (byte)(i * 7)).ToArray();
    private static readonly string PhotoSha1 = Convert.ToHexStringLower(SHA1.HashData(Photo));

    private static async Task<TestServer> Server(string? dataDir = null)
    {
        var s = await TestServer.StartAsync(dataDir);
        foreach (var user in new[] { "juliet", "romeo", "nurse" })
            if (await s.Get<Xmpp.Server.Auth.AccountService>().FindAsync(user) is null)
                await s.AddUserAsync(user, user + "-pw");
        return s;
    }

    private static Task<TestClient> Connect(TestServer s, string user, string resource = "pc") =>
        TestClient.ConnectAsync(s, user, user + "-pw", resource);

    private static string VCardWithPhoto(string name) =>
        // Base64 broken into lines as RFC 2045 writers do; XEP-0153 §4.6 says the whitespace is ignored.
        $"<vCard xmlns='vcard-temp'><FN>{name}</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>"
        + string.Join("\n", Convert.ToBase64String(Photo).Chunk(76).Select(c => new string(c)))
        + "</BINVAL></PHOTO></vCard>";

    private static void AssertError(Element reply, string condition)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        Assert.That(reply.Child("error", Ns.Client)?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    private static async Task Subscribed(TestServer s, string user, string subscriber)
    {
        await s.Get<IStorage>().Rosters.SetItemAsync(user, new RosterItem(subscriber + "@localhost", null, [], Subscription.Both, false, false, false, true));
        await s.Get<IStorage>().Rosters.SetItemAsync(subscriber, new RosterItem(user + "@localhost", null, [], Subscription.Both, false, false, false, true));
    }

    [TestCase("<iq type='get'><vCard xmlns='vcard-temp'/></iq>")]
    [TestCase("<iq type='get' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>")]
    public async Task A_user_without_a_vcard_gets_an_empty_one(string request)
    {
        await using var server = await Server();
        await using var juliet = await Connect(server, "juliet");
        var reply = await juliet.IqAsync(request);
        Assert.That(X.Matches(reply, "<iq type='result'><vCard xmlns='vcard-temp'/></iq>"), reply.ToString());
        Assert.That(reply.Child("vCard", Ns.VCard)!.IsEmpty);
    }

    [Test]
    public async Task A_set_replaces_the_whole_vcard_and_the_owner_reads_it_back()
    {
        await using var server = await Server();
        await using var juliet = await Connect(server, "juliet");
        var set = await juliet.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NICKNAME>jc</NICKNAME></vCard></iq>");
        Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());

        // XEP-0054 §3.2: no partial updates; a set without NICKNAME removes it.
        await juliet.IqAsync("<iq type='set' to='juliet@localhost'><vCard xmlns='vcard-temp'><FN>Juliet</FN><BDAY>1476-06-09</BDAY></vCard></iq>");
        var got = await juliet.IqAsync("<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
        var vcard = got.Child("vCard", Ns.VCard)!;
        Assert.That(vcard.ChildText("FN", Ns.VCard), Is.EqualTo("Juliet"));
        Assert.That(vcard.ChildText("BDAY", Ns.VCard), Is.EqualTo("1476-06-09"));
        Assert.That(vcard.Child("NICKNAME", Ns.VCard), Is.Null, got.ToString());
    }

    [Test]
    public async Task Others_read_a_stored_vcard_and_get_item_not_found_when_there_is_none()
    {
        await using var server = await Server();
        await using var juliet = await Connect(server, "juliet");
        await using var romeo = await Connect(server, "romeo");
        await juliet.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard></iq>");

        var got = await romeo.IqAsync("<iq type='get' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>");
        Assert.That(X.Matches(got, "<iq type='result' from='juliet@localhost'><vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard></iq>"), got.ToString());

        // XEP-0054 §3.3: another user's missing vCard is an error, not an empty vCard.
        AssertError(await romeo.IqAsync("<iq type='get' to='nurse@localhost'><vCard xmlns='vcard-temp'/></iq>"), "item-not-found");
        // No such account: the router answers as for any IQ to a missing user.
        AssertError(await romeo.IqAsync("<iq type='get' to='tybalt@localhost'><vCard xmlns='vcard-temp'/></iq>"), "service-unavailable");
    }

    [Test]
    public async Task Setting_another_users_vcard_is_forbidden()
    {
        await using var server = await Server();
        await using var juliet = await Connect(server, "juliet");
        await using var romeo = await Connect(server, "romeo");
        await juliet.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard></iq>");

        AssertError(await romeo.IqAsync("<iq type='set' to='juliet@localhost'><vCard xmlns='vcard-temp'><FN>Romeo was here</FN></vCard></iq>"), "forbidden");
        var got = await juliet.IqAsync("<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
        Assert.That(got.Child("vCard", Ns.VCard)!.ChildText("FN", Ns.VCard), Is.EqualTo("Juliet"));
    }

    [Test]
    public async Task An_oversized_vcard_is_refused_and_the_stored_one_kept()
    {
        await using var server = await Server();
        await using var juliet = await Connect(server, "juliet");
        await juliet.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard></iq>");

        var big = new string('A', VCardModule.MaxBytes);
        var reply = await juliet.IqAsync($"<iq type='set'><vCard xmlns='vcard-temp'><FN>Juliet</FN><DESC>{big}</DESC></vCard></iq>");
        AssertError(reply, "not-acceptable");
        Assert.That(reply.Child("error", Ns.Client)!.ChildText("text", Ns.StanzaErrors), Does.Contain("KiB"));

        var got = await juliet.IqAsync("<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
        Assert.That(got.Child("vCard", Ns.VCard)!.Child("DESC", Ns.VCard), Is.Null);
        Assert.That(got.Child("vCard", Ns.VCard)!.ChildText("FN", Ns.VCard), Is.EqualTo("Juliet"));
    }

    [Test]
    public async Task Presence_without_an_avatar_element_gets_the_hash_of_the_vcard_photo()
    {
        await using var server = await Server();
        await Subscribed(server, "juliet", "romeo");
        await using var romeo = await Connect(server, "romeo");
        await romeo.SendAsync("<presence/>");
        await using var juliet = await Connect(server, "juliet");
        await juliet.IqAsync($"<iq type='set'>{VCardWithPhoto("Juliet")}</iq>");

        await juliet.SendAsync("<presence><show>away</show></presence>");
        var seen = await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc");
        Assert.That(X.Matches(seen, $"<presence><show>away</show><x xmlns='vcard-temp:x:update'><photo>{PhotoSha1}</photo></x></presence>"), seen.ToString());
        // The resource that sent it sees the same broadcast.
        var echo = await juliet.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc");
        Assert.That(echo.Child("x", Ns.VCardUpdate)?.ChildText("photo", Ns.VCardUpdate), Is.EqualTo(PhotoSha1));
    }

    [Test]
    public async Task An_avatar_element_the_client_sent_is_left_alone()
    {
        await using var server = await Server();
        await Subscribed(server, "juliet", "romeo");
        await using var romeo = await Connect(server, "romeo");
        await romeo.SendAsync("<presence/>");
        await using var juliet = await Connect(server, "juliet");
        await juliet.IqAsync($"<iq type='set'>{VCardWithPhoto("Juliet")}</iq>");

        // XEP-0153 §4.1: an empty update element means "not ready to advertise"; the server must not override it.
        await juliet.SendAsync("<presence><x xmlns='vcard-temp:x:update'/></presence>");
        var seen = await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc");
        var updates = seen.Elements("x", Ns.VCardUpdate).ToList();
        Assert.That(updates, Has.Count.EqualTo(1), seen.ToString());
        Assert.That(updates[0].IsEmpty, seen.ToString());
    }

    [Test]
    public async Task Presence_of_a_user_without_a_photo_is_not_changed()
    {
        await using var server = await Server();
        await Subscribed(server, "juliet", "romeo");
        await using var romeo = await Connect(server, "romeo");
        await romeo.SendAsync("<presence/>");
        await using var juliet = await Connect(server, "juliet");
        await juliet.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard></iq>");

        await juliet.SendAsync("<presence/>");
        var seen = await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc");
        Assert.That(seen.Child("x", Ns.VCardUpdate), Is.Null, seen.ToString());
    }

    [Test]
    public async Task Removing_the_photo_stops_the_hash_in_later_presence()
    {
        await using var server = await Server();
        await Subscribed(server, "juliet", "romeo");
        await using var romeo = await Connect(server, "romeo");
        await romeo.SendAsync("<presence/>");
        await using var juliet = await Connect(server, "juliet");
        await juliet.IqAsync($"<iq type='set'>{VCardWithPhoto("Juliet")}</iq>");
        await juliet.SendAsync("<presence/>");
        var first = await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc");
        Assert.That(first.Child("x", Ns.VCardUpdate), Is.Not.Null);

        await juliet.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard></iq>");
        await juliet.SendAsync("<presence><status>no face</status></presence>");
        var second = await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc" && e.ChildText("status", Ns.Client) == "no face");
        Assert.That(second.Child("x", Ns.VCardUpdate), Is.Null, second.ToString());
    }

    [Test]
    public async Task The_vcard_and_its_avatar_hash_survive_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-vcard-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var server = await Server(dir))
            {
                await Subscribed(server, "juliet", "romeo");
                await using var juliet = await Connect(server, "juliet");
                var set = await juliet.IqAsync($"<iq type='set'>{VCardWithPhoto("Juliet Capulet")}</iq>");
                Assert.That(set.Attr("type"), Is.EqualTo("result"));
            }
            await using (var server = await Server(dir))
            {
                await using var romeo = await Connect(server, "romeo");
                var got = await romeo.IqAsync("<iq type='get' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>");
                Assert.That(got.Child("vCard", Ns.VCard)?.ChildText("FN", Ns.VCard), Is.EqualTo("Juliet Capulet"), got.ToString());

                // After the restart the hash comes from storage, loaded at Juliet's first presence.
                await romeo.SendAsync("<presence/>");
                await using var juliet = await Connect(server, "juliet");
                await juliet.SendAsync("<presence/>");
                var seen = await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc");
                Assert.That(seen.Child("x", Ns.VCardUpdate)?.ChildText("photo", Ns.VCardUpdate), Is.EqualTo(PhotoSha1), seen.ToString());
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task The_server_announces_vcard_temp()
    {
        await using var server = await Server();
        await using var juliet = await Connect(server, "juliet");
        var info = await juliet.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='vcard-temp'/></query></iq>"), info.ToString());
    }

    [TestCase("", "")]
    [TestCase("<PHOTO><EXTVAL>https://example.org/a.png</EXTVAL></PHOTO>", "")]
    [TestCase("<PHOTO><BINVAL>not base64!</BINVAL></PHOTO>", "")]
    [TestCase("<PHOTO><BINVAL>aGVsbG8=</BINVAL></PHOTO>", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")]
    [TestCase("<PHOTO><BINVAL> aGVs\r\n bG8= </BINVAL></PHOTO>", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")]
    public void The_photo_hash_is_the_sha1_of_the_decoded_binval(string photo, string hash) =>
        Assert.That(VCardModule.PhotoHash(X.Parse($"<vCard xmlns='vcard-temp'>{photo}</vCard>")), Is.EqualTo(hash));
}
