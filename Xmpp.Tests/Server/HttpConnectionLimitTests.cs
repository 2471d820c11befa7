using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Xmpp:Http:MaxConnectionsPerIp: concurrent connections one address may hold on the HTTPS listener. The loopback
/// exemption is turned off so the test's own address counts.
[TestFixture, Category("Abuse")]
public sealed class HttpConnectionLimitTests
{
    private const int Max = 3;

    private static async Task<(TcpClient Tcp, SslStream Ssl)> OpenAsync(TestServer server)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.HttpPort);
        var ssl = new SslStream(tcp.GetStream());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        }, cts.Token);
        return (tcp, ssl);
    }

    /// One keep-alive request on the connection; the status line of the answer.
    private static async Task<string> GetAsync(SslStream ssl)
    {
        await ssl.WriteAsync("GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray());
        // The whole answer is read, so the next request on this connection does not find the rest of this one (a
        // chunked body's last chunk may come in a later segment).
        var buffer = new byte[4096];
        var text = "";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!Complete(text))
        {
            int n = await ssl.ReadAsync(buffer, cts.Token);
            if (n == 0) break;
            text += Encoding.ASCII.GetString(buffer, 0, n);
        }
        return text.Length == 0 ? "" : text.Split("\r\n")[0];
    }

    private static bool Complete(string text)
    {
        int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0) return false;
        var headers = text[..end];
        var length = headers.Split("\r\n").FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        if (length is not null) return text.Length - (end + 4) >= int.Parse(length["Content-Length:".Length..].Trim());
        if (headers.Contains("chunked", StringComparison.OrdinalIgnoreCase)) return text.EndsWith("0\r\n\r\n", StringComparison.Ordinal);
        return true;
    }

    [Test]
    public async Task A_connection_above_the_per_address_limit_is_closed_at_once_and_a_slot_frees_when_one_ends()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:Http:MaxConnectionsPerIp"] = Max.ToString();
            o["Xmpp:Http:ExemptLoopback"] = "false";
        });
        using var refused = new RefusalCounts(server);
        var open = new List<(TcpClient Tcp, SslStream Ssl)>();
        try
        {
            for (int i = 0; i < Max; i++)
            {
                var c = await OpenAsync(server);
                open.Add(c);
                Assert.That(await GetAsync(c.Ssl), Does.StartWith("HTTP/1.1 200"), $"connection {i + 1} of {Max}");
            }

            // One more: accepted by TCP, then closed before any TLS byte is exchanged: the read sees the end (or a reset).
            using (var extra = new TcpClient())
            {
                await extra.ConnectAsync(server.Host, server.HttpPort);
                var buffer = new byte[64];
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                int n;
                try
                {
                    n = await extra.GetStream().ReadAsync(buffer, cts.Token);
                }
                catch (IOException)
                {
                    n = 0; // a reset is a close too
                }
                Assert.That(n, Is.Zero, "the connection over the limit is closed without an answer");
            }
            Assert.That(refused["http-connections-per-ip"], Is.EqualTo(1));

            // The connections inside the limit still work.
            Assert.That(await GetAsync(open[0].Ssl), Does.StartWith("HTTP/1.1 200"));

            // Closing one frees its slot: a new connection is served again.
            open[^1].Ssl.Dispose();
            open[^1].Tcp.Dispose();
            open.RemoveAt(open.Count - 1);
            (TcpClient, SslStream)? again = null;
            Assert.That(await Wait.UntilAsync(async () =>
            {
                try
                {
                    again = await OpenAsync(server);
                    return true;
                }
                catch (Exception e) when (e is IOException or SocketException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(10)), "a slot frees when a connection ends");
            open.Add(again!.Value);
            Assert.That(await GetAsync(open[^1].Ssl), Does.StartWith("HTTP/1.1 200"));
        }
        finally
        {
            foreach (var (tcp, ssl) in open)
            {
                ssl.Dispose();
                tcp.Dispose();
            }
        }
    }
}
