using System.Diagnostics;
using System.Net.Sockets;
using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// What a login costs on the wire: the stream header and its features in one write at every stream (re)start, and
/// the listen backlog the operator configured on every listener.
[TestFixture]
[Category("Listener")]
public sealed class PacketsPerStreamTests
{
    [Test]
    public async Task Header_and_features_go_out_in_one_write_at_every_stream_start()
    {
        await using var server = await TestServer.StartAsync();
        var transport = CountingTransport.Attach(server);
        await server.AddUserAsync("alice", "alice-pw");
        await using var c = await TestClient.ConnectRawAsync(server);
        CountingTransport.ConnectionWrites? output = null;
        Assert.That(await Wait.UntilAsync(() => transport.Connections.TryDequeue(out output), TimeSpan.FromSeconds(5)), Is.True);

        Assert.That(await WritesWhileAsync(output!, c, () => c.OpenStreamAsync()), Is.EqualTo((1, 1)), "first stream, before TLS");
        await c.StartTlsAsync();
        await Task.Delay(100); // TLS 1.3 session tickets follow the handshake on their own
        Assert.That(await WritesWhileAsync(output!, c, () => c.OpenStreamAsync()), Is.EqualTo((1, 1)), "after STARTTLS (RFC 6120 §5.4.3.3)");
        var success = await c.TryAuthenticateAsync("alice", "alice-pw");
        Assert.That(success.Is("success", Ns.Sasl), Is.True);
        Assert.That(await WritesWhileAsync(output!, c, () => c.RestartStreamAsync()), Is.EqualTo((1, 1)), "after SASL (RFC 6120 §6.4.6)");
        Assert.That(c.Features!.Child("bind", Ns.Bind), Is.Not.Null);
    }

    [Test]
    public async Task Header_and_features_go_out_in_one_write_on_direct_tls()
    {
        await using var server = await TestServer.StartAsync();
        var transport = CountingTransport.Attach(server);
        await using var c = await TestClient.ConnectRawAsync(server, directTls: true);
        CountingTransport.ConnectionWrites? output = null;
        Assert.That(await Wait.UntilAsync(() => transport.Connections.TryDequeue(out output), TimeSpan.FromSeconds(5)), Is.True);
        await Task.Delay(100);
        Assert.That(await WritesWhileAsync(output!, c, () => c.OpenStreamAsync()), Is.EqualTo((1, 1)));
    }

    [Test]
    public async Task The_configured_listen_backlog_reaches_every_client_listener()
    {
        await using var server = await TestServer.StartAsync(configure: o => o["Xmpp:ListenBacklog"] = "777");
        Assert.That(ListenBacklog(server.C2sPort), Is.EqualTo(777));
        Assert.That(ListenBacklog(server.C2sTlsPort), Is.EqualTo(777));
    }

    [Test]
    public async Task The_default_listen_backlog_is_above_kestrels_512()
    {
        await using var server = await TestServer.StartAsync();
        int somaxconn = int.Parse(File.ReadAllText("/proc/sys/net/core/somaxconn").Trim());
        Assert.That(ListenBacklog(server.C2sPort), Is.EqualTo(Math.Min(4096, somaxconn)));
    }

    /// The server's socket writes while the action ran, and the TCP segments with data that reached the client
    /// (Linux tcp_info.tcpi_data_segs_in): the segments show the wire, the writes make the count independent of
    /// whether the transport happened to merge two writes into one send.
    private static async Task<(int Writes, int Segments)> WritesWhileAsync(CountingTransport.ConnectionWrites output, TestClient c, Func<Task> action)
    {
        int writes = output.Flushes;
        uint segments = DataSegmentsIn(c.Socket);
        await action();
        await Task.Delay(50); // a second write, if there were one, would have arrived by now
        return (output.Flushes - writes, (int)(DataSegmentsIn(c.Socket) - segments));
    }

    private static uint DataSegmentsIn(Socket socket)
    {
        const int IpProtoTcp = 6, TcpInfo = 11, DataSegsInOffset = 152; // struct tcp_info, Linux ≥ 4.6
        var info = new byte[232];
        int length = socket.GetRawSocketOption(IpProtoTcp, TcpInfo, info);
        Assert.That(length, Is.GreaterThanOrEqualTo(DataSegsInOffset + 4), "kernel without tcpi_data_segs_in");
        return BitConverter.ToUInt32(info, DataSegsInOffset);
    }

    /// The backlog of the listening socket on a port, as ss(8) reports it (Send-Q of a LISTEN socket).
    private static int ListenBacklog(int port)
    {
        var psi = new ProcessStartInfo("ss", $"-ltnH sport = :{port}") { RedirectStandardOutput = true };
        using var ss = Process.Start(psi)!;
        var output = ss.StandardOutput.ReadToEnd();
        ss.WaitForExit();
        var fields = output.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        Assert.That(fields.Length, Is.GreaterThanOrEqualTo(3), "ss found no listener on port " + port + ": " + output);
        return int.Parse(fields[2]);
    }
}
