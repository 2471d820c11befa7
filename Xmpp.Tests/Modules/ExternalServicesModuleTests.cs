using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0215: Romeo's phone asks the server for STUN and TURN servers before a call and gets TURN credentials that
/// the TURN server can check with its shared secret alone.
[TestFixture]
public sealed class ExternalServicesModuleTests
{
    private const string Secret = "north-wind-secret";

    private static async Task<TestServer> Server(bool configured = true, string lifetime = "3600")
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            if (!configured) return;
            o["Xmpp:ExternalServices:CredentialLifetimeSeconds"] = lifetime;
            o["Xmpp:ExternalServices:Services:0:Type"] = "stun";
            o["Xmpp:ExternalServices:Services:0:Host"] = "stun.example.org";
            o["Xmpp:ExternalServices:Services:0:Port"] = "3478";
            o["Xmpp:ExternalServices:Services:1:Type"] = "turn";
            o["Xmpp:ExternalServices:Services:1:Host"] = "turn.example.org";
            o["Xmpp:ExternalServices:Services:1:Port"] = "3478";
            o["Xmpp:ExternalServices:Services:1:Secret"] = Secret;
            o["Xmpp:ExternalServices:Services:2:Type"] = "turns";
            o["Xmpp:ExternalServices:Services:2:Host"] = "turn.example.org";
            o["Xmpp:ExternalServices:Services:2:Port"] = "5349";
            o["Xmpp:ExternalServices:Services:2:Transport"] = "tcp";
            o["Xmpp:ExternalServices:Services:2:Secret"] = Secret;
        });
        await s.AddUserAsync("romeo", "romeo-pw");
        return s;
    }

    private static Task<TestClient> Connect(TestServer s) => TestClient.ConnectAsync(s, "romeo", "romeo-pw", "phone");

    private static void AssertError(Element reply, string condition)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        Assert.That(reply.Child("error", Ns.Client)?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    private static void AssertTurnCredentials(Element service, DateTimeOffset before, DateTimeOffset after, int lifetime)
    {
        var username = service.Attr("username")!;
        var parts = username.Split(':', 2);
        Assert.That(parts[1], Is.EqualTo("romeo@localhost"), service.ToString());
        var expiry = long.Parse(parts[0], CultureInfo.InvariantCulture);
        Assert.That(expiry, Is.InRange(before.AddSeconds(lifetime).ToUnixTimeSeconds(), after.AddSeconds(lifetime).ToUnixTimeSeconds()));
        // What coturn with use-auth-secret computes to check the password.
        var expected = Convert.ToBase64String(HMACSHA1.HashData(Encoding.UTF8.GetBytes(Secret), Encoding.UTF8.GetBytes(username)));
        Assert.That(service.Attr("password"), Is.EqualTo(expected));
        var expires = DateTimeOffset.Parse(service.Attr("expires")!, CultureInfo.InvariantCulture);
        Assert.That(expires.ToUnixTimeSeconds(), Is.EqualTo(expiry));
        Assert.That(service.Attr("expires"), Does.EndWith("Z"));
    }

    [Test]
    public async Task The_server_announces_external_services_and_lists_them_with_turn_credentials()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);
        var info = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq><query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:extdisco:2'/></query></iq>"), info.ToString());

        var before = DateTimeOffset.UtcNow;
        var list = await romeo.IqAsync("<iq type='get' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>");
        var after = DateTimeOffset.UtcNow;

        var services = list.Child("services", Ns.ExtDisco)!.Elements().ToList();
        Assert.That(services.Select(s => s.Attr("type")), Is.EqualTo(new[] { "stun", "turn", "turns" }), list.ToString());
        Assert.That(X.Matches(services[0], "<service xmlns='urn:xmpp:extdisco:2' type='stun' host='stun.example.org' port='3478' transport='udp'/>"), services[0].ToString());
        Assert.That(services[0].Attr("username"), Is.Null, "STUN needs no credentials");
        Assert.That(services[2].Attr("transport"), Is.EqualTo("tcp"));
        AssertTurnCredentials(services[1], before, after, 3600);
        AssertTurnCredentials(services[2], before, after, 3600);
    }

    [Test]
    public async Task A_type_narrows_the_list()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var list = await romeo.IqAsync("<iq type='get' to='localhost'><services xmlns='urn:xmpp:extdisco:2' type='turn'/></iq>");

        var services = list.Child("services", Ns.ExtDisco)!;
        Assert.That(services.Attr("type"), Is.EqualTo("turn"));
        Assert.That(services.Elements().Select(s => s.Attr("host") + ":" + s.Attr("port")), Is.EqualTo(new[] { "turn.example.org:3478" }));
    }

    [Test]
    public async Task Credentials_are_given_for_a_named_turn_service_and_expire_after_the_configured_lifetime()
    {
        await using var server = await Server(lifetime: "600");
        await using var romeo = await Connect(server);

        var before = DateTimeOffset.UtcNow;
        var reply = await romeo.IqAsync("<iq type='get' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.org' type='turn'/></credentials></iq>");
        var after = DateTimeOffset.UtcNow;

        var services = reply.Child("credentials", Ns.ExtDisco)!.Elements().ToList();
        Assert.That(services, Has.Count.EqualTo(1), reply.ToString());
        AssertTurnCredentials(services[0], before, after, 600);
        var byPort = await romeo.IqAsync("<iq type='get' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.org' type='turns' port='5349'/></credentials></iq>");
        Assert.That(byPort.Child("credentials", Ns.ExtDisco)!.Elements().Single().Attr("port"), Is.EqualTo("5349"), byPort.ToString());
    }

    [TestCase("<service host='turn.example.org' type='turn' port='1'/>", StanzaErrors.ItemNotFound)]
    [TestCase("<service host='elsewhere.example.org' type='turn'/>", StanzaErrors.ItemNotFound)]
    [TestCase("<service host='stun.example.org' type='stun'/>", StanzaErrors.ItemNotFound)]
    [TestCase("<service type='turn'/>", StanzaErrors.BadRequest)]
    [TestCase("<service host='turn.example.org'/>", StanzaErrors.BadRequest)]
    [TestCase("", StanzaErrors.BadRequest)]
    public async Task A_credentials_request_that_names_no_turn_service_gets_its_error(string service, string condition)
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var reply = await romeo.IqAsync($"<iq type='get' to='localhost'><credentials xmlns='urn:xmpp:extdisco:2'>{service}</credentials></iq>");

        AssertError(reply, condition);
    }

    [Test]
    public async Task A_set_gets_bad_request()
    {
        await using var server = await Server();
        await using var romeo = await Connect(server);

        var reply = await romeo.IqAsync("<iq type='set' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>");

        AssertError(reply, StanzaErrors.BadRequest);
    }

    [Test]
    public async Task Without_configured_services_nothing_is_announced_or_answered()
    {
        await using var server = await Server(configured: false);
        await using var romeo = await Connect(server);

        var info = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")), Has.None.EqualTo(Ns.ExtDisco));
        var reply = await romeo.IqAsync("<iq type='get' to='localhost'><services xmlns='urn:xmpp:extdisco:2'/></iq>");
        AssertError(reply, StanzaErrors.ServiceUnavailable);
    }
}
