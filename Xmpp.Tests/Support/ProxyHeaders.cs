using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Xmpp.Tests.Support;

/// PROXY protocol headers (proxy-protocol.txt) as a load balancer sends them, for tests that play the balancer.
public static class ProxyHeaders
{
    private static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    public static byte[] V1(string client, int clientPort = 40000, string server = "127.0.0.1", int serverPort = 5222)
    {
        var family = IPAddress.Parse(client).AddressFamily == AddressFamily.InterNetwork ? "TCP4" : "TCP6";
        return Encoding.ASCII.GetBytes($"PROXY {family} {client} {server} {clientPort} {serverPort}\r\n");
    }

    public static byte[] V2(string client, int clientPort = 40000, string server = "127.0.0.1", int serverPort = 5222)
    {
        var c = IPAddress.Parse(client);
        var s = IPAddress.Parse(server);
        if (c.AddressFamily != s.AddressFamily) s = c.AddressFamily == AddressFamily.InterNetwork ? s.MapToIPv4() : s.MapToIPv6();
        var body = new List<byte>();
        body.AddRange(c.GetAddressBytes());
        body.AddRange(s.GetAddressBytes());
        var ports = new byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(ports, (ushort)clientPort);
        BinaryPrimitives.WriteUInt16BigEndian(ports.AsSpan(2), (ushort)serverPort);
        body.AddRange(ports);
        return Header(0x21, c.AddressFamily == AddressFamily.InterNetwork ? 0x11 : 0x21, [.. body]);
    }

    /// The LOCAL command: the proxy speaks for itself (its health checks), no client address.
    public static byte[] V2Local() => Header(0x20, 0x00, []);

    private static byte[] Header(int versionCommand, int familyTransport, byte[] body)
    {
        var header = new byte[16];
        Signature.CopyTo(header, 0);
        header[12] = (byte)versionCommand;
        header[13] = (byte)familyTransport;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)body.Length);
        return [.. header, .. body];
    }
}
