using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0363 over XMPP: Romeo finds upload.localhost and asks it for slots; the service keeps to its limits.
[TestFixture]
public sealed class UploadModuleTests
{
    private const long MiB = 1024 * 1024;

    internal static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            configure?.Invoke(o);
        });
        await s.AddUserAsync("romeo", "romeo-pw");
        await s.AddUserAsync("juliet", "juliet-pw");
        return s;
    }

    internal static Task<TestClient> Connect(TestServer s, string user = "romeo") => TestClient.ConnectAsync(s, user, user + "-pw", "pc", sendPresence: true);

    private static void AssertError(Element reply, string condition, string type)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        var error = reply.Child("error", Ns.Client);
        Assert.That(error?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
        Assert.That(error!.Attr("type"), Is.EqualTo(type), reply.ToString());
    }

    [Test]
    public async Task The_server_lists_the_upload_service_in_its_disco_items()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var items = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");

        Assert.That(X.Matches(items, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#items'><item jid='upload.localhost'/></query></iq>"), items.ToString());
    }

    [Test]
    public async Task The_upload_service_announces_its_identity_feature_and_max_file_size()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var info = await romeo.IqAsync("<iq type='get' to='upload.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");

        Assert.That(info.Attr("from"), Is.EqualTo("upload.localhost"));
        Assert.That(X.Matches(info, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
            + "<identity category='store' type='file'/><feature var='urn:xmpp:http:upload:0'/>"
            + "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>urn:xmpp:http:upload:0</value></field>"
            + "<field var='max-file-size'><value>104857600</value></field></x></query></iq>"), info.ToString());
    }

    [Test]
    public async Task Without_the_https_port_no_upload_service_exists()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("romeo", "romeo-pw");
        await using var romeo = await Connect(server);

        var items = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(items.Child("query", Ns.DiscoItems)!.Elements().Select(e => e.Attr("jid")), Does.Not.Contain("upload.localhost"), items.ToString());
        var slot = await UploadClient.RequestAsync(romeo, server, "a.txt", 1, "text/plain");
        AssertError(slot, StanzaErrors.RemoteServerNotFound, "cancel");
    }

    [Test]
    public async Task A_slot_has_an_https_put_url_and_a_get_url_for_the_same_file()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var (put, get) = await UploadClient.SlotAsync(romeo, server, "my juliet.jpg", 1234, "image/jpeg");

        Assert.That(get, Does.StartWith($"https://localhost:{server.HttpPort}/upload/").And.EndWith("/my%20juliet.jpg"));
        Assert.That(put, Does.StartWith(get + "?"));
        var (_, other) = await UploadClient.SlotAsync(romeo, server, "my juliet.jpg", 1234, "image/jpeg");
        Assert.That(other, Is.Not.EqualTo(get), "every slot has its own random id");
    }

    [TestCase("image/jpeg", 16 * MiB + 1, 16 * MiB)]
    [TestCase("video/mp4", 16 * MiB + 1, 16 * MiB)]
    [TestCase("audio/ogg", 20 * MiB, 16 * MiB)]
    [TestCase("application/pdf", 100 * MiB + 1, 100 * MiB)]
    [TestCase(null, 100 * MiB + 1, 100 * MiB)]
    public async Task A_file_over_the_limit_of_its_kind_gets_file_too_large_with_that_limit(string? type, long size, long limit)
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var reply = await UploadClient.RequestAsync(romeo, server, "big", size, type);

        AssertError(reply, StanzaErrors.NotAcceptable, "modify");
        var tooLarge = reply.Child("error", Ns.Client)!.Child("file-too-large", Ns.HttpUpload);
        Assert.That(tooLarge?.ChildText("max-file-size", Ns.HttpUpload), Is.EqualTo(limit.ToString()), reply.ToString());
    }

    [TestCase("image/png", 16 * MiB)]
    [TestCase("application/pdf", 20 * MiB)]
    [TestCase("application/zip", 100 * MiB)]
    public async Task A_file_within_the_limit_of_its_kind_gets_a_slot(string type, long size)
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        await UploadClient.SlotAsync(romeo, server, "f", size, type);
    }

    [Test]
    public async Task Limits_are_configurable()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:Upload:MaxMediaBytes"] = "1000";
            o["Xmpp:Upload:MaxFileBytes"] = "2000";
        });
        await using var romeo = await Connect(server);

        var media = await UploadClient.RequestAsync(romeo, server, "a.png", 1001, "image/png");
        Assert.That(media.Child("error", Ns.Client)?.Child("file-too-large", Ns.HttpUpload)?.ChildText("max-file-size", Ns.HttpUpload), Is.EqualTo("1000"), media.ToString());
        var doc = await UploadClient.RequestAsync(romeo, server, "a.pdf", 2001, "application/pdf");
        Assert.That(doc.Child("error", Ns.Client)?.Child("file-too-large", Ns.HttpUpload)?.ChildText("max-file-size", Ns.HttpUpload), Is.EqualTo("2000"), doc.ToString());
        await UploadClient.SlotAsync(romeo, server, "a.pdf", 2000, "application/pdf");
    }

    [TestCase("<request xmlns='urn:xmpp:http:upload:0' size='10'/>")]
    [TestCase("<request xmlns='urn:xmpp:http:upload:0' filename='' size='10'/>")]
    [TestCase("<request xmlns='urn:xmpp:http:upload:0' filename='a.txt'/>")]
    [TestCase("<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='-1'/>")]
    [TestCase("<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='ten'/>")]
    [TestCase("<request xmlns='urn:xmpp:http:upload:0' filename='../etc/passwd' size='10'/>")]
    [TestCase("<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='10' content-type='not a type'/>")]
    public async Task A_malformed_slot_request_gets_bad_request(string request)
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var reply = await romeo.IqAsync($"<iq type='get' to='upload.localhost'>{request}</iq>");

        AssertError(reply, StanzaErrors.BadRequest, "modify");
    }

    [Test]
    public async Task A_slot_requested_with_type_set_gets_bad_request()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var reply = await romeo.IqAsync("<iq type='set' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/></iq>");

        AssertError(reply, StanzaErrors.BadRequest, "modify");
    }

    [Test]
    public async Task An_unknown_payload_or_a_message_to_the_service_gets_service_unavailable()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var iq = await romeo.IqAsync("<iq type='get' to='upload.localhost'><query xmlns='jabber:iq:version'/></iq>");
        AssertError(iq, StanzaErrors.ServiceUnavailable, "cancel");
        await romeo.SendAsync("<message to='upload.localhost' id='m1' type='chat'><body>hi</body></message>");
        var bounce = await romeo.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m1");
        AssertError(bounce, StanzaErrors.ServiceUnavailable, "cancel");
    }

    [Test]
    public async Task Past_the_quota_a_slot_request_gets_resource_constraint()
    {
        await using var server = await Server(o => o["Xmpp:Upload:QuotaBytesPerAccount"] = "1000");
        await using var romeo = await Connect(server);
        await using var juliet = await Connect(server, "juliet");
        using var http = UploadClient.Http(server);
        var (put, _) = await UploadClient.SlotAsync(romeo, server, "a.bin", 600, "application/octet-stream");
        var (late, _) = await UploadClient.SlotAsync(romeo, server, "b.bin", 600, "application/octet-stream");
        using (var first = await UploadClient.PutAsync(http, put, new byte[600], "application/octet-stream"))
            Assert.That((int)first.StatusCode, Is.EqualTo(201));

        var refused = await UploadClient.RequestAsync(romeo, server, "c.bin", 401, "application/octet-stream");
        AssertError(refused, StanzaErrors.ResourceConstraint, "wait");
        await UploadClient.SlotAsync(romeo, server, "c.bin", 400, "application/octet-stream");
        // A slot handed out before the quota filled up is checked again when it is used.
        using (var second = await UploadClient.PutAsync(http, late, new byte[600], "application/octet-stream"))
            Assert.That((int)second.StatusCode, Is.EqualTo(403));
        // The quota is per account.
        await UploadClient.SlotAsync(juliet, server, "d.bin", 1000, "application/octet-stream");
    }

    [Test]
    public async Task Deleting_an_account_deletes_its_files()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);
        using var http = UploadClient.Http(server);
        var (put, get) = await UploadClient.SlotAsync(romeo, server, "a.txt", 3, "text/plain");
        using (var r = await UploadClient.PutAsync(http, put, "abc"u8.ToArray(), "text/plain"))
            Assert.That((int)r.StatusCode, Is.EqualTo(201));

        var removed = await romeo.IqAsync("<iq type='set'><query xmlns='jabber:iq:register'><remove/></query></iq>");
        Assert.That(removed.Attr("type"), Is.EqualTo("result"), removed.ToString());

        Assert.That(await Wait.UntilAsync(async () => (await http.GetAsync(get)).StatusCode == System.Net.HttpStatusCode.NotFound));
        var root = server.Get<Xmpp.Server.Modules.Upload.UploadFiles>().Root;
        Assert.That(await Wait.UntilAsync(() => !Directory.EnumerateFiles(root).Any()), "the file itself is deleted");
    }
}
