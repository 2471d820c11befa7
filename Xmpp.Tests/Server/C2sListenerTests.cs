using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Server.Streams;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The client ports' own listener (Streams/C2sListener.cs, issue 18): what Kestrel's transport did before, and the
/// bytes it must not lose between the plain-text phase and TLS.
[TestFixture]
public sealed class C2sListenerTests
{
    [Test]
    public async Task A_client_hello_sent_in_the_same_packet_as_starttls_still_completes_the_handshake()
    {
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:Limits:TlsHandshakeTimeoutSeconds"] = "30");
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.C2sPort);
        var net = tcp.GetStream();
        await net.WriteAsync(Encoding.UTF8.GetBytes(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"));
        await ReadUntilAsync(net, "</stream:features>");
        // RFC 6120 §5.4.2.3 has the client wait for <proceed/>; one that does not must not lose its ClientHello, which
        // the server's plain-text reader has already taken from the socket with <starttls/>.
        var pipelined = new StartTlsInFrontStream(net);
        await using var tls = new SslStream(pipelined, leaveInnerStreamOpen: true, (_, _, _, _) => true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, timeout.Token);
        Assert.That(pipelined.SentInOneWrite, Is.True, "<starttls/> and the ClientHello went out in one write");
        await tls.WriteAsync(Encoding.UTF8.GetBytes(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"),
            timeout.Token);
        var features = await ReadUntilAsync(tls, "</stream:features>");
        Assert.That(features, Does.Contain("SCRAM-SHA-256"), "the stream restarted over TLS offers SASL");
    }

    [Test]
    public async Task A_burst_of_600_connects_is_all_accepted()
    {
        // Kestrel's backlog was 512; ours is Xmpp:ListenBacklog (PacketsPerStreamTests checks the socket's value).
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:ListenBacklog"] = "1500");
        var listener = server.Get<C2sListener>();
        var clients = Enumerable.Range(0, 600).Select(_ => new TcpClient()).ToList();
        try
        {
            await Task.WhenAll(clients.Select(c => c.ConnectAsync(server.Host, server.C2sPort))).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.That(await Wait.UntilAsync(() => listener.OpenConnections >= 600, TimeSpan.FromSeconds(20)), $"{listener.OpenConnections} accepted");
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
        Assert.That(await Wait.UntilAsync(() => listener.OpenConnections == 0, TimeSpan.FromSeconds(20)),
            $"closed connections are counted out ({listener.OpenConnections} left)");
    }

    [Test]
    public void A_port_that_is_taken_fails_the_start_with_the_listener_and_address_in_the_message()
    {
        using var taken = new TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var failure = Assert.ThrowsAsync<IOException>(async () =>
            await (await TestServer.StartAsync(configure: o => o["Xmpp:C2sTlsPort"] = port.ToString())).DisposeAsync());
        Assert.That(failure!.Message, Does.Contain($"c2s direct TLS listener to 127.0.0.1:{port}"));
    }

    [Test]
    public async Task Stopping_the_server_closes_open_connections_and_ends_accepting()
    {
        var server = await TestServer.StartAsync();
        try
        {
            await server.AddUserAsync("alice", "alice-pw");
            await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "desk");
            using var quiet = new TcpClient(); // connected, never says anything
            await quiet.ConnectAsync(server.Host, server.C2sPort);
            var listener = server.Get<C2sListener>();
            Assert.That(await Wait.UntilAsync(() => listener.OpenConnections == 2, TimeSpan.FromSeconds(5)), $"{listener.OpenConnections} open");
            var clock = Stopwatch.StartNew();
            await server.StopAsync().WaitAsync(TimeSpan.FromSeconds(20));
            var error = await alice.ReceiveAsync(e => e.Name == "error", TimeSpan.FromSeconds(5));
            Assert.That(error.Is("error", Ns.Streams) && error.FirstElement?.Name == "system-shutdown", error.ToString());
            // The quiet one gets the stream error too (RFC 6120 §4.9.1.1 sends a header first) and then the end of the connection.
            var said = await ReadToEndAsync(quiet.GetStream(), TimeSpan.FromSeconds(5));
            Assert.That(said, Does.Contain("system-shutdown"));
            Assert.That(listener.OpenConnections, Is.Zero);
            Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "nothing waited for the host's shutdown timeout");
            using var late = new TcpClient();
            Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(server.Host, server.C2sPort), "nothing listens any more");
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static async Task<string> ReadUntilAsync(Stream stream, string end)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!text.ToString().Contains(end, StringComparison.Ordinal))
        {
            int n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0) throw new EndOfStreamException($"closed before {end}: {text}");
            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        return text.ToString();
    }

    private static async Task<string> ReadToEndAsync(Stream stream, TimeSpan limit)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(limit);
        int n;
        while ((n = await stream.ReadAsync(buffer, timeout.Token)) > 0) text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        return text.ToString();
    }

    /// The client side of an impatient STARTTLS: the first write (the ClientHello) goes out behind &lt;starttls/&gt;
    /// in one packet, and the server's &lt;proceed/&gt; is skipped before the TLS bytes that follow it.
    private sealed class StartTlsInFrontStream(NetworkStream inner) : Stream
    {
        private static readonly byte[] StartTls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"u8.ToArray();
        private bool _written;
        private bool _proceedSkipped;

        public bool SentInOneWrite { get; private set; }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            if (_written)
            {
                await inner.WriteAsync(buffer, ct);
                return;
            }
            _written = true;
            await inner.WriteAsync(StartTls.Concat(buffer.ToArray()).ToArray(), ct);
            SentInOneWrite = true;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            if (!_proceedSkipped)
            {
                var seen = new StringBuilder();
                var one = new byte[1];
                while (!seen.ToString().EndsWith("/>", StringComparison.Ordinal))
                {
                    if (await inner.ReadAsync(one, ct) == 0) return 0;
                    seen.Append((char)one[0]);
                }
                if (!seen.ToString().Contains("<proceed", StringComparison.Ordinal)) throw new IOException("expected <proceed/>, got " + seen);
                _proceedSkipped = true;
            }
            return await inner.ReadAsync(buffer, ct);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
