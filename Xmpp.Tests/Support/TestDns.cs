using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Xmpp.Tests.Support;

/// A tiny authoritative DNS server (RFC 1035 over UDP) for federation tests: it answers SRV queries for
/// _xmpp-server._tcp.DOMAIN (RFC 6120 §3.2.1) and A queries for the SRV targets, all pointing at loopback ports, and
/// NXDOMAIN for everything else. It listens on port 53 of an address of its own in 127/8 (resolv.conf has no port),
/// so other servers started in a mount namespace with a resolv.conf naming it find ours without public DNS.
public sealed class TestDns : IAsyncDisposable
{
    private readonly UdpClient _udp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Dictionary<string, (string Target, int Port)> _srv = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, IPAddress> _a = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _gate = new();

    private TestDns(UdpClient udp, IPAddress address)
    {
        _udp = udp;
        Address = address;
        _loop = Task.Run(LoopAsync);
    }

    public IPAddress Address { get; }

    /// Binds 127.53.x.y:53 for some free x.y; needs root (or CAP_NET_BIND_SERVICE).
    public static TestDns Start()
    {
        for (int attempt = 0; ; attempt++)
        {
            var address = new IPAddress([127, 53, (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(1, 255)]);
            try
            {
                return new TestDns(new UdpClient(new IPEndPoint(address, 53)), address);
            }
            catch (SocketException) when (attempt < 20)
            {
            }
        }
    }

    /// _xmpp-server._tcp.DOMAIN → xmpp-DOMAIN.srv.test:PORT, and that name → 127.0.0.1.
    public void AddXmppServer(string domain, int port)
    {
        var target = "xmpp-" + domain + ".srv.test";
        lock (_gate)
        {
            _srv["_xmpp-server._tcp." + domain] = (target, port);
            _a[target] = IPAddress.Loopback;
        }
    }

    /// A resolv.conf naming only this server, for a bind mount over /etc/resolv.conf.
    public string ResolvConf => $"nameserver {Address}\noptions timeout:2 attempts:2\n";

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult query;
            try { query = await _udp.ReceiveAsync(_stop.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            var answer = Answer(query.Buffer);
            if (answer is null) continue;
            try { await _udp.SendAsync(answer, query.RemoteEndPoint, _stop.Token); }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException) { }
        }
    }

    private byte[]? Answer(byte[] q)
    {
        if (q.Length < 12 || (q[2] & 0x80) != 0 || BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(4)) != 1) return null;
        // The question: labels, then type and class.
        int pos = 12;
        var labels = new List<string>();
        while (pos < q.Length && q[pos] != 0)
        {
            int len = q[pos];
            if ((len & 0xC0) != 0 || pos + 1 + len > q.Length) return null;
            labels.Add(Encoding.ASCII.GetString(q, pos + 1, len));
            pos += 1 + len;
        }
        if (pos + 5 > q.Length) return null;
        pos++;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(pos));
        pos += 4;
        var name = string.Join('.', labels);

        var answers = new List<byte[]>();
        bool exists;
        lock (_gate)
        {
            exists = _srv.ContainsKey(name) || _a.ContainsKey(name);
            if (type == 33 && _srv.TryGetValue(name, out var srv))
            {
                var target = EncodeName(srv.Target);
                var rdata = new byte[6 + target.Length];
                BinaryPrimitives.WriteUInt16BigEndian(rdata, 0); // priority
                BinaryPrimitives.WriteUInt16BigEndian(rdata.AsSpan(2), 0); // weight
                BinaryPrimitives.WriteUInt16BigEndian(rdata.AsSpan(4), (ushort)srv.Port);
                target.CopyTo(rdata, 6);
                answers.Add(Record(33, rdata));
            }
            else if (type == 1 && _a.TryGetValue(name, out var address))
            {
                answers.Add(Record(1, address.GetAddressBytes()));
            }
        }
        var response = new List<byte>(512);
        response.AddRange(q.AsSpan(0, 2).ToArray()); // id
        // QR, opcode 0, AA, RD copied; RA; rcode NXDOMAIN (3) for names we do not know, else NOERROR (NODATA too).
        response.Add((byte)(0x84 | (q[2] & 0x01)));
        response.Add((byte)(0x80 | (exists ? 0 : 3)));
        response.AddRange([0, 1, 0, (byte)answers.Count, 0, 0, 0, 0]);
        response.AddRange(q.AsSpan(12, pos - 12).ToArray());
        foreach (var a in answers) response.AddRange(a);
        return response.ToArray();
    }

    private static byte[] Record(ushort type, byte[] rdata)
    {
        var r = new byte[12 + rdata.Length];
        r[0] = 0xC0; r[1] = 12; // the name: a pointer to the question's
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(2), type);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(4), 1); // IN
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(6), 60);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(10), (ushort)rdata.Length);
        rdata.CopyTo(r, 12);
        return r;
    }

    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }
        bytes.Add(0);
        return bytes.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp.Dispose();
        try { await _loop; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
