using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Xmpp.Tests.Support;

/// A tiny authoritative DNS server on a free loopback UDP port (RFC 1035 wire format), answering SRV (RFC 2782), A and
/// AAAA queries from a table the test fills; unknown names get NXDOMAIN. Point the server at it with
/// Xmpp:S2s:DnsServers so SRV look-ups are tested without touching the machine's resolver. For other servers, which
/// read /etc/resolv.conf (which has no port), StartOnPort53 binds port 53 of an address of its own in 127/8 and
/// ResolvConf names it, for a bind mount over /etc/resolv.conf in a mount namespace only that server sees.
public sealed class TestDns : IAsyncDisposable
{
    private readonly UdpClient _udp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Dictionary<string, List<(ushort Type, byte[] Data)>> _records = new(StringComparer.OrdinalIgnoreCase);
    private int _queries;

    private TestDns(UdpClient udp)
    {
        _udp = udp;
        _loop = Task.Run(ServeAsync);
    }

    public static TestDns Start() => new(new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)));

    /// Binds 127.53.x.y:53 for some free x.y; needs root (or CAP_NET_BIND_SERVICE).
    public static TestDns StartOnPort53()
    {
        for (int attempt = 0; ; attempt++)
        {
            var address = new IPAddress([127, 53, (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(1, 255)]);
            try
            {
                return new TestDns(new UdpClient(new IPEndPoint(address, 53)));
            }
            catch (SocketException) when (attempt < 20)
            {
            }
        }
    }

    public IPAddress ListenAddress => ((IPEndPoint)_udp.Client.LocalEndPoint!).Address;

    /// A resolv.conf naming only this server (it must listen on port 53: StartOnPort53).
    public string ResolvConf => $"nameserver {ListenAddress}\noptions timeout:2 attempts:2\n";

    /// _xmpp-server._tcp.DOMAIN (RFC 6120 §3.2.1) → xmpp-DOMAIN.srv.test:PORT, and that name → 127.0.0.1.
    public TestDns AddXmppServer(string domain, int port)
    {
        var target = "xmpp-" + domain + ".srv.test";
        return Srv("_xmpp-server._tcp." + domain, 0, 0, port, target).Address(target, "127.0.0.1");
    }

    public int Port => ((IPEndPoint)_udp.Client.LocalEndPoint!).Port;

    /// The value for Xmpp:S2s:DnsServers.
    public string Endpoint => "127.0.0.1:" + Port;

    /// Queries received so far (a server that ignores the responder would leave this at 0).
    public int Queries => Volatile.Read(ref _queries);

    /// True: queries are read and never answered, like a DNS server that is down behind a firewall.
    public bool Silent { get; set; }

    public TestDns Srv(string name, int priority, int weight, int port, string target)
    {
        var data = new List<byte>();
        foreach (var v in new[] { priority, weight, port }) data.AddRange([(byte)(v >> 8), (byte)v]);
        data.AddRange(EncodeName(target));
        return Add(name, 33, [.. data]);
    }

    public TestDns Address(string name, string ip)
    {
        var address = IPAddress.Parse(ip);
        return Add(name, address.AddressFamily == AddressFamily.InterNetwork ? (ushort)1 : (ushort)28, address.GetAddressBytes());
    }

    private TestDns Add(string name, ushort type, byte[] data)
    {
        lock (_records)
        {
            var key = name.TrimEnd('.');
            if (!_records.TryGetValue(key, out var list)) _records[key] = list = [];
            list.Add((type, data));
        }
        return this;
    }

    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var l = Encoding.ASCII.GetBytes(label);
            bytes.Add((byte)l.Length);
            bytes.AddRange(l);
        }
        bytes.Add(0);
        return [.. bytes];
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult request;
            try { request = await _udp.ReceiveAsync(_stop.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            Interlocked.Increment(ref _queries);
            if (Silent) continue;
            var answer = Answer(request.Buffer);
            if (answer is null) continue;
            try { await _udp.SendAsync(answer, request.RemoteEndPoint, _stop.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
        }
    }

    /// The response to one query: its header and question echoed, then every record of the asked type for the name.
    private byte[]? Answer(byte[] query)
    {
        if (query.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(4)) != 1) return null;
        int offset = 12;
        var labels = new List<string>();
        while (offset < query.Length && query[offset] != 0)
        {
            int length = query[offset];
            if (length > 63 || offset + 1 + length > query.Length) return null;
            labels.Add(Encoding.ASCII.GetString(query, offset + 1, length));
            offset += 1 + length;
        }
        offset++; // the root label
        if (offset + 4 > query.Length) return null;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(offset));
        int questionEnd = offset + 4;
        var name = string.Join('.', labels);

        List<(ushort Type, byte[] Data)> matching;
        bool known;
        lock (_records)
        {
            known = _records.TryGetValue(name, out var all);
            matching = all?.Where(r => r.Type == type).ToList() ?? [];
        }
        var response = new List<byte>(query.AsSpan(0, questionEnd).ToArray());
        // QR, the query's opcode and RD, AA; RA; RCODE 3 (NXDOMAIN) for a name the table does not hold.
        response[2] = (byte)(0x80 | (query[2] & 0x79) | 0x04);
        response[3] = (byte)(0x80 | (known ? 0 : 3));
        response[6] = (byte)(matching.Count >> 8);
        response[7] = (byte)matching.Count;
        response[8] = response[9] = response[10] = response[11] = 0; // no authority or additional records (EDNS dropped)
        foreach (var (t, data) in matching)
        {
            response.AddRange([0xC0, 0x0C]); // the name: a pointer to the question's
            response.AddRange([(byte)(t >> 8), (byte)t, 0, 1, 0, 0, 0, 60, (byte)(data.Length >> 8), (byte)data.Length]);
            response.AddRange(data);
        }
        return [.. response];
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp.Dispose();
        try { await _loop; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
