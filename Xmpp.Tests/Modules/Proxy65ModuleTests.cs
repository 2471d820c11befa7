using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Proxy65;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0065 §6 mediated bytestreams: Romeo sends Juliet a file through proxy.localhost; both connect with SOCKS5,
/// Romeo activates, and the bytes flow both ways, within the proxy's limits.
[TestFixture]
public sealed class Proxy65ModuleTests
{
    private const string Sid = "vxf9n471bn46";
    private const string RomeoJid = "romeo@localhost/pc";
    private const string JulietJid = "juliet@localhost/phone";

    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Proxy65:Port"] = TestServer.FreePort().ToString();
            configure?.Invoke(o);
        });
        await s.AddUserAsync("romeo", "romeo-pw");
        return s;
    }

    private static Task<TestClient> Romeo(TestServer s) => TestClient.ConnectAsync(s, "romeo", "romeo-pw", "pc");

    private static int Port(TestServer s) => s.Options.Proxy65.Port;

    private static void AssertError(Element reply, string condition)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        Assert.That(reply.Child("error", Ns.Client)?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    /// Connects and completes the SOCKS5 handshake for the address; returns the socket and the reply status.
    private static async Task<(TcpClient Tcp, NetworkStream Stream, byte Status)> Socks5Async(TestServer s, string address)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, Port(s));
        var stream = tcp.GetStream();
        await stream.WriteAsync(new byte[] { 5, 1, 0 });
        Assert.That(await ReadExactly(stream, 2), Is.EqualTo(new byte[] { 5, 0 }));
        var request = new List<byte> { 5, 1, 0, 3, (byte)address.Length };
        request.AddRange(Encoding.ASCII.GetBytes(address));
        request.AddRange(new byte[] { 0, 0 });
        await stream.WriteAsync(request.ToArray());
        var reply = await ReadExactly(stream, 7 + address.Length);
        Assert.That(reply[0], Is.EqualTo(5));
        Assert.That(Encoding.ASCII.GetString(reply, 5, address.Length), Is.EqualTo(address));
        return (tcp, stream, reply[1]);
    }

    private static async Task<byte[]> ReadExactly(Stream stream, int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await stream.ReadExactlyAsync(buffer, timeout.Token);
        return buffer;
    }

    private static Task<Element> Activate(TestClient romeo, string target = JulietJid, string sid = Sid) =>
        romeo.IqAsync($"<iq type='set' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams' sid='{sid}'><activate>{target}</activate></query></iq>");

    [Test]
    public async Task The_proxy_is_listed_and_names_its_streamhost()
    {
        await using var server = await Server();
        await using var romeo = await Romeo(server);

        var items = await romeo.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.That(X.Matches(items, "<iq><query xmlns='http://jabber.org/protocol/disco#items'><item jid='proxy.localhost'/></query></iq>"), items.ToString());
        var info = await romeo.IqAsync("<iq type='get' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq><query xmlns='http://jabber.org/protocol/disco#info'><identity category='proxy' type='bytestreams'/><feature var='http://jabber.org/protocol/bytestreams'/></query></iq>"), info.ToString());
        var host = await romeo.IqAsync("<iq type='get' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>");
        Assert.That(X.Matches(host, $"<iq type='result'><query xmlns='http://jabber.org/protocol/bytestreams'><streamhost jid='proxy.localhost' host='127.0.0.1' port='{Port(server)}'/></query></iq>"), host.ToString());
    }

    [Test]
    public async Task Without_a_port_there_is_no_proxy()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("romeo", "romeo-pw");
        await using var romeo = await Romeo(server);

        var host = await romeo.IqAsync("<iq type='get' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>");

        AssertError(host, StanzaErrors.RemoteServerNotFound);
    }

    [Test]
    public async Task After_activation_bytes_flow_both_ways_including_those_sent_before()
    {
        await using var server = await Server();
        await using var romeo = await Romeo(server);
        var address = Proxy65Module.Address(Sid, RomeoJid, JulietJid);
        var (julietTcp, juliet, s1) = await Socks5Async(server, address);
        var (romeoTcp, romeoStream, s2) = await Socks5Async(server, address);
        using var _1 = julietTcp;
        using var _2 = romeoTcp;
        Assert.That((s1, s2), Is.EqualTo(((byte)0, (byte)0)));
        // §7: bytes sent before activation are kept, not dropped.
        await romeoStream.WriteAsync("early "u8.ToArray());

        var activated = await Activate(romeo);
        Assert.That(activated.Attr("type"), Is.EqualTo("result"), activated.ToString());

        var file = new byte[200_000];
        new Random(7).NextBytes(file);
        await romeoStream.WriteAsync(file);
        Assert.That(Encoding.ASCII.GetString(await ReadExactly(juliet, 6)), Is.EqualTo("early "));
        Assert.That(await ReadExactly(juliet, file.Length), Is.EqualTo(file));
        await juliet.WriteAsync("thanks"u8.ToArray());
        Assert.That(Encoding.ASCII.GetString(await ReadExactly(romeoStream, 6)), Is.EqualTo("thanks"));

        romeoTcp.Client.Shutdown(SocketShutdown.Send);
        Assert.That(await juliet.ReadAsync(new byte[1]), Is.Zero, "the end of Romeo's stream reaches Juliet");
        var relay = server.Get<BytestreamRelay>();
        julietTcp.Close();
        Assert.That(await Wait.UntilAsync(() => relay.SessionCount == 0), "the finished bytestream is forgotten");
    }

    [Test]
    public async Task Activation_before_both_parties_connected_gets_item_not_found()
    {
        await using var server = await Server();
        await using var romeo = await Romeo(server);

        AssertError(await Activate(romeo), StanzaErrors.ItemNotFound);
        var (tcp, _, status) = await Socks5Async(server, Proxy65Module.Address(Sid, RomeoJid, JulietJid));
        using var _1 = tcp;
        Assert.That(status, Is.Zero);
        AssertError(await Activate(romeo), StanzaErrors.ItemNotFound);
    }

    [Test]
    public async Task Only_the_initiator_named_in_the_hash_can_activate()
    {
        await using var server = await Server();
        await server.AddUserAsync("mallory", "mallory-pw");
        await using var mallory = await TestClient.ConnectAsync(server, "mallory", "mallory-pw", "pc");
        var address = Proxy65Module.Address(Sid, RomeoJid, JulietJid);
        var (a, _, _) = await Socks5Async(server, address);
        var (b, _, _) = await Socks5Async(server, address);
        using var _1 = a;
        using var _2 = b;

        AssertError(await Activate(mallory), StanzaErrors.ItemNotFound);
    }

    [TestCase("<query xmlns='http://jabber.org/protocol/bytestreams'><activate>juliet@localhost/phone</activate></query>", StanzaErrors.BadRequest)]
    [TestCase("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'/>", StanzaErrors.BadRequest)]
    [TestCase("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><activate>@@bad</activate></query>", StanzaErrors.JidMalformed)]
    public async Task A_malformed_activation_gets_its_error(string query, string condition)
    {
        await using var server = await Server();
        await using var romeo = await Romeo(server);

        AssertError(await romeo.IqAsync($"<iq type='set' to='proxy.localhost'>{query}</iq>"), condition);
    }

    [Test]
    public async Task A_third_connection_to_a_bytestream_is_refused()
    {
        await using var server = await Server();
        var address = Proxy65Module.Address(Sid, RomeoJid, JulietJid);
        var (a, _, _) = await Socks5Async(server, address);
        var (b, _, _) = await Socks5Async(server, address);
        var (c, stream, status) = await Socks5Async(server, address);
        using var _1 = a;
        using var _2 = b;
        using var _3 = c;

        Assert.That(status, Is.EqualTo(2), "connection not allowed by ruleset");
        Assert.That(await stream.ReadAsync(new byte[1]), Is.Zero, "and closed");
    }

    [Test]
    public async Task Past_the_session_limit_new_bytestreams_are_refused()
    {
        await using var server = await Server(o => o["Xmpp:Proxy65:MaxSessions"] = "2");
        var (a, _, s1) = await Socks5Async(server, Proxy65Module.Address("s1", RomeoJid, JulietJid));
        var (b, _, s2) = await Socks5Async(server, Proxy65Module.Address("s2", RomeoJid, JulietJid));
        var (c, _, s3) = await Socks5Async(server, Proxy65Module.Address("s3", RomeoJid, JulietJid));
        using var _1 = a;
        using var _2 = b;
        using var _3 = c;

        Assert.That(new[] { s1, s2, s3 }, Is.EqualTo(new byte[] { 0, 0, 2 }));
        a.Close();
        Assert.That(await Wait.UntilAsync(() => server.Get<BytestreamRelay>().SessionCount == 1), "a closed waiting connection frees its place");
        var (d, _, s4) = await Socks5Async(server, Proxy65Module.Address("s4", RomeoJid, JulietJid));
        using var _4 = d;
        Assert.That(s4, Is.Zero);
    }

    [Test]
    public async Task The_relay_keeps_to_the_configured_rate()
    {
        const int rate = 64 * 1024;
        await using var server = await Server(o => o["Xmpp:Proxy65:MaxBytesPerSecond"] = rate.ToString());
        await using var romeo = await Romeo(server);
        var address = Proxy65Module.Address(Sid, RomeoJid, JulietJid);
        var (a, juliet, _) = await Socks5Async(server, address);
        var (b, romeoStream, _) = await Socks5Async(server, address);
        using var _1 = a;
        using var _2 = b;
        Assert.That((await Activate(romeo)).Attr("type"), Is.EqualTo("result"));

        var clock = Stopwatch.StartNew();
        var send = romeoStream.WriteAsync(new byte[3 * rate]).AsTask();
        await ReadExactly(juliet, 3 * rate);
        await send;

        // Three seconds' worth at the allowed rate cannot arrive in much under three seconds (a tenth goes at once).
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(1.9)));
    }

    [Test]
    public async Task A_connection_never_activated_is_closed_after_the_timeout()
    {
        await using var server = await Server(o => o["Xmpp:Proxy65:ActivationTimeoutSeconds"] = "1");
        var (tcp, stream, status) = await Socks5Async(server, Proxy65Module.Address(Sid, RomeoJid, JulietJid));
        using var _1 = tcp;
        Assert.That(status, Is.Zero);

        Assert.That(await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(20)), Is.Zero);
        Assert.That(await Wait.UntilAsync(() => server.Get<BytestreamRelay>().SessionCount == 0));
    }

    [Test]
    public async Task A_client_offering_only_password_authentication_is_refused()
    {
        await using var server = await Server();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, Port(server));
        var stream = tcp.GetStream();

        await stream.WriteAsync(new byte[] { 5, 1, 2 });

        Assert.That(await ReadExactly(stream, 2), Is.EqualTo(new byte[] { 5, 0xFF }));
        Assert.That(await stream.ReadAsync(new byte[1]), Is.Zero);
    }

    [Test]
    public async Task A_request_other_than_connect_to_a_domain_name_is_refused()
    {
        await using var server = await Server();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, Port(server));
        var stream = tcp.GetStream();
        await stream.WriteAsync(new byte[] { 5, 1, 0 });
        await ReadExactly(stream, 2);

        await stream.WriteAsync(new byte[] { 5, 1, 0, 1, 127, 0, 0, 1, 0, 80 }); // CONNECT to an IPv4 address

        var reply = await ReadExactly(stream, 2);
        Assert.That(reply[1], Is.EqualTo(8), "address type not supported");
    }
}
