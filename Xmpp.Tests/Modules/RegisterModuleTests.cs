using Xmpp.Protocol;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0077: registration off by default, on by config; password change and removal for logged-in users.
[TestFixture]
public sealed class RegisterModuleTests
{
    private static async Task<Xmpp.Protocol.Xml.Element> PreAuthIq(TestClient c, string xml)
    {
        await c.SendRawAsync(xml);
        return await c.ReadElementAsync();
    }

    [Test]
    public async Task Registration_is_off_by_default_and_not_advertised()
    {
        await using var server = await TestServer.StartAsync();
        await using var c = await TestClient.OpenAsync(server);
        Assert.That(c.Features!.Child("register", Ns.RegisterFeature), Is.Null);
        var reply = await PreAuthIq(c, "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>mallory</username><password>password123</password></query></iq>");
        Assert.That(reply.Child("error", Ns.Client)?.Child("service-unavailable", Ns.StanzaErrors), Is.Not.Null, reply.ToString());
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("mallory"), Is.Null);
    }

    [Test]
    public async Task With_registration_on_a_new_user_registers_and_logs_in()
    {
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:Registration:AllowRegistration"] = "true");
        await using (var c = await TestClient.OpenAsync(server))
        {
            Assert.That(c.Features!.Child("register", Ns.RegisterFeature), Is.Not.Null);
            var form = await PreAuthIq(c, "<iq type='get' id='f1'><query xmlns='jabber:iq:register'/></iq>");
            Assert.That(form.Child("query", Ns.Register)?.Child("username", Ns.Register), Is.Not.Null);
            Assert.That(form.Attr("to"), Is.Null, "no address before authentication");
            var ok = await PreAuthIq(c, "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>Carol</username><password>carol-password</password></query></iq>");
            Assert.That(ok.Attr("type"), Is.EqualTo("result"), ok.ToString());
        }
        await using var carol = await TestClient.ConnectAsync(server, "carol", "carol-password", "new");
        Assert.That(carol.Jid!.Bare.ToString(), Is.EqualTo("carol@localhost"));
    }

    [TestCase("<username>dave</username><password>short</password>", StanzaErrors.NotAcceptable)]
    [TestCase("<username>da ve</username><password>long-enough-pw</password>", StanzaErrors.JidMalformed)]
    [TestCase("<username>dave</username>", StanzaErrors.NotAcceptable)]
    public async Task Invalid_registrations_are_refused(string fields, string condition)
    {
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:Registration:AllowRegistration"] = "true");
        await using var c = await TestClient.OpenAsync(server);
        var reply = await PreAuthIq(c, $"<iq type='set' id='r1'><query xmlns='jabber:iq:register'>{fields}</query></iq>");
        Assert.That(reply.Child("error", Ns.Client)?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    [Test]
    public async Task Taken_username_is_conflict_and_a_second_registration_from_one_ip_must_wait()
    {
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:Registration:AllowRegistration"] = "true");
        await server.AddUserAsync("erin", "erin-password");
        await using var c = await TestClient.OpenAsync(server);
        var taken = await PreAuthIq(c, "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>erin</username><password>whatever-pw</password></query></iq>");
        Assert.That(taken.Child("error", Ns.Client)?.Child("conflict", Ns.StanzaErrors), Is.Not.Null, taken.ToString());
        var first = await PreAuthIq(c, "<iq type='set' id='r2'><query xmlns='jabber:iq:register'><username>frank</username><password>frank-password</password></query></iq>");
        Assert.That(first.Attr("type"), Is.EqualTo("result"));
        var second = await PreAuthIq(c, "<iq type='set' id='r3'><query xmlns='jabber:iq:register'><username>grace</username><password>grace-password</password></query></iq>");
        Assert.That(second.Child("error", Ns.Client)?.Child("resource-constraint", Ns.StanzaErrors), Is.Not.Null, second.ToString());
    }

    [Test]
    public async Task A_logged_in_user_changes_the_password_even_with_registration_off()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("heidi", "old-password");
        await using (var heidi = await TestClient.ConnectAsync(server, "heidi", "old-password", "pc"))
        {
            var reply = await heidi.IqAsync("<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><username>heidi</username><password>new-password</password></query></iq>");
            Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
            var other = await heidi.IqAsync("<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><username>bob</username><password>hijack-pass</password></query></iq>");
            Assert.That(other.Child("error", Ns.Client)?.Child("not-allowed", Ns.StanzaErrors), Is.Not.Null);
        }
        await using var c = await TestClient.OpenAsync(server);
        Assert.That((await c.TryAuthenticateAsync("heidi", "old-password")).Name, Is.EqualTo("failure"));
        await using var c2 = await TestClient.OpenAsync(server);
        Assert.That((await c2.TryAuthenticateAsync("heidi", "new-password")).Name, Is.EqualTo("success"));
        var stored = await server.Get<IStorage>().Accounts.FindAsync("heidi");
        Assert.That(stored!.Credentials.Select(k => k.Hash), Is.EquivalentTo(new[] { "SHA-1", "SHA-256", "SHA-512" }));
    }

    [Test]
    public async Task Removing_the_account_deletes_it_and_closes_the_session()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("ivan", "ivan-password");
        await using var ivan = await TestClient.ConnectAsync(server, "ivan", "ivan-password", "pc");
        var reply = await ivan.IqAsync("<iq type='set'><query xmlns='jabber:iq:register'><remove/></query></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"));
        var error = await ivan.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child("not-authorized", Ns.StreamErrors), Is.Not.Null);
        Assert.That(await server.Get<IStorage>().Accounts.FindAsync("ivan"), Is.Null);
    }
}
