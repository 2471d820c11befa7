using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Xmpp.Server.Tls.Acme;

namespace Xmpp.Tests.Server;

/// The ClientHello reader in front of the direct TLS ports (RFC 8737 tls-alpn-01): real ClientHellos from SslStream,
/// fed whole, cut at every length, and with lengths that lie.
[TestFixture]
[Category("Certificates")]
public sealed class TlsAlpn01ResponderTests
{
    [TestCase("acme.test", new[] { "acme-tls/1" })]
    [TestCase("conference.acme.test", new[] { "xmpp-client" })]
    [TestCase("upload.acme.test", new[] { "h2", "http/1.1" })]
    public async Task The_sni_name_and_alpn_protocols_are_read_and_an_incomplete_record_asks_for_more(string name, string[] alpn)
    {
        var hello = await CaptureClientHelloAsync(name, alpn);
        var parsed = TlsAlpn01Responder.ParseClientHello(new ReadOnlySequence<byte>(hello), out bool complete);
        Assert.That(complete, Is.True);
        Assert.That(parsed!.ServerName, Is.EqualTo(name));
        Assert.That(parsed.Protocols, Is.EqualTo(alpn));
        int recordEnd = 5 + (hello[3] << 8 | hello[4]);
        for (int cut = 0; cut < recordEnd; cut++)
        {
            Assert.That(TlsAlpn01Responder.ParseClientHello(new ReadOnlySequence<byte>(hello, 0, cut), out complete), Is.Null);
            Assert.That(complete, Is.False, $"cut at {cut}");
        }
    }

    [Test]
    public async Task Lying_lengths_and_other_records_end_the_parse_without_an_exception()
    {
        var hello = await CaptureClientHelloAsync("acme.test", ["acme-tls/1"]);
        int recordEnd = 5 + (hello[3] << 8 | hello[4]);
        for (int i = 5; i < recordEnd; i++)
        {
            var damaged = hello.ToArray();
            damaged[i] = 0xff;
            Assert.DoesNotThrow(() => TlsAlpn01Responder.ParseClientHello(new ReadOnlySequence<byte>(damaged), out _), $"byte {i}");
        }
        // Not a handshake record (an XMPP client speaking plain XML to the direct TLS port): passed on at once.
        var xml = "<?xml version='1.0'?><stream:stream"u8.ToArray();
        Assert.That(TlsAlpn01Responder.ParseClientHello(new ReadOnlySequence<byte>(xml), out bool complete), Is.Null);
        Assert.That(complete, Is.True);
    }

    /// The bytes a .NET client sends first: its ClientHello, captured by a listener that never answers.
    private static async Task<byte[]> CaptureClientHelloAsync(string name, string[] alpn)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var server = await listener.AcceptTcpClientAsync();
        var ssl = new SslStream(client.GetStream());
        var handshake = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = name,
            ApplicationProtocols = alpn.Select(a => new SslApplicationProtocol(a)).ToList(),
        });
        var bytes = new List<byte>();
        var buffer = new byte[4096];
        var stream = server.GetStream();
        while (bytes.Count < 5 || bytes.Count < 5 + (bytes[3] << 8 | bytes[4]))
        {
            int n = await stream.ReadAsync(buffer);
            if (n == 0) break;
            bytes.AddRange(buffer.AsSpan(0, n).ToArray());
        }
        server.Close();
        try { await handshake; } catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException) { }
        ssl.Dispose();
        return bytes.ToArray();
    }
}
