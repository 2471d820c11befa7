using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;
using Xmpp.Server.ProxyProtocol;
using Xmpp.Tests.Protocol;

namespace Xmpp.Tests.Server;

/// The PROXY protocol header parser (proxy-protocol.txt v1 and v2): every input whole, split at every byte position,
/// and as every prefix (one byte at a time), followed by the client's first bytes, which must stay unread.
public sealed class ProxyHeaderParserTests
{
    private static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
    private static readonly byte[] ClientBytes = "<?xml version='1.0'?>"u8.ToArray();

    private static byte[] V2(int versionCommand, int familyTransport, byte[] body, int? declaredLength = null)
    {
        var header = new byte[16];
        Signature.CopyTo(header, 0);
        header[12] = (byte)versionCommand;
        header[13] = (byte)familyTransport;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)(declaredLength ?? body.Length));
        return [.. header, .. body];
    }

    private static byte[] Addresses(string source, string destination, int sourcePort, int destinationPort)
    {
        var s = IPAddress.Parse(source).GetAddressBytes();
        var d = IPAddress.Parse(destination).GetAddressBytes();
        var ports = new byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(ports, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(ports.AsSpan(2), (ushort)destinationPort);
        return [.. s, .. d, .. ports];
    }

    private static byte[] Tlv(int type, int length) => [(byte)type, (byte)(length >> 8), (byte)length, .. new byte[length]];

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    private static readonly Dictionary<string, byte[]> Inputs = new()
    {
        ["v1 TCP4"] = Ascii("PROXY TCP4 203.0.113.9 192.0.2.1 51000 5222\r\n"),
        ["v1 TCP6"] = Ascii("PROXY TCP6 2001:db8::9 2001:db8::1 51000 5223\r\n"),
        ["v1 UNKNOWN"] = Ascii("PROXY UNKNOWN\r\n"),
        ["v1 UNKNOWN with addresses"] = Ascii("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"),
        ["v1 longest"] = Ascii("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
        ["v2 PROXY TCP4"] = V2(0x21, 0x11, Addresses("203.0.113.9", "192.0.2.1", 51000, 5222)),
        ["v2 PROXY TCP6"] = V2(0x21, 0x21, Addresses("2001:db8::9", "2001:db8::1", 51000, 5223)),
        ["v2 PROXY UNSPEC"] = V2(0x21, 0x00, []),
        ["v2 PROXY UNIX"] = V2(0x21, 0x31, new byte[216]),
        ["v2 LOCAL"] = V2(0x20, 0x00, []),
        ["v2 LOCAL with addresses"] = V2(0x20, 0x11, Addresses("127.0.0.1", "127.0.0.1", 40000, 5281)),
        ["v2 TCP4 with TLVs"] = V2(0x21, 0x11, [.. Addresses("203.0.113.9", "192.0.2.1", 51000, 5222), .. Tlv(0x01, 8), .. Tlv(0x04, 0), .. Tlv(0xE0, 300)]),
        ["v2 TCP4 IPv4-mapped source"] = V2(0x21, 0x21, Addresses("::ffff:203.0.113.9", "::ffff:192.0.2.1", 1, 5222)),

        ["wrong first byte"] = Ascii("<?xml version='1.0'?>"),
        ["TLS ClientHello"] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01],
        ["v2 signature wrong"] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x55, 0x0A, 0x21, 0x11, 0x00, 0x0C],
        ["v1 lower case"] = Ascii("proxy TCP4 203.0.113.9 192.0.2.1 51000 5222\r\n"),
        ["v1 PROXYTCP4"] = Ascii("PROXYTCP4 203.0.113.9 192.0.2.1 51000 5222\r\n"),
        ["v1 no CR"] = Ascii("PROXY TCP4 203.0.113.9 192.0.2.1 51000 5222\n"),
        ["v1 UNKNOWN of 107 bytes"] = Ascii("PROXY UNKNOWN " + new string('f', 91) + "\r\n"),
        ["v1 too long"] = Ascii("PROXY UNKNOWN " + new string('f', 92) + "\r\n"),
        ["v1 no line end within 107 bytes"] = Ascii("PROXY " + new string('1', 200)),
        ["v1 unknown protocol"] = Ascii("PROXY UDP4 203.0.113.9 192.0.2.1 51000 5222\r\n"),
        ["v1 five fields"] = Ascii("PROXY TCP4 203.0.113.9 192.0.2.1 51000\r\n"),
        ["v1 two spaces"] = Ascii("PROXY TCP4  203.0.113.9 192.0.2.1 51000 5222\r\n"),
        ["v1 IPv6 in TCP4"] = Ascii("PROXY TCP4 2001:db8::9 192.0.2.1 51000 5222\r\n"),
        ["v1 IPv4 in TCP6"] = Ascii("PROXY TCP6 203.0.113.9 2001:db8::1 51000 5222\r\n"),
        ["v1 short IPv4"] = Ascii("PROXY TCP4 10.1 192.0.2.1 51000 5222\r\n"),
        ["v1 IPv4 leading zero"] = Ascii("PROXY TCP4 010.1.2.3 192.0.2.1 51000 5222\r\n"),
        ["v1 IPv6 scope"] = Ascii("PROXY TCP6 fe80::1%eth0 2001:db8::1 51000 5222\r\n"),
        ["v1 port too big"] = Ascii("PROXY TCP4 203.0.113.9 192.0.2.1 65536 5222\r\n"),
        ["v1 port not a number"] = Ascii("PROXY TCP4 203.0.113.9 192.0.2.1 -1 5222\r\n"),
        ["v1 NUL byte"] = Ascii("PROXY TCP4 203.0.113.9\0 192.0.2.1 51000 5222\r\n"),
        ["v2 version 1"] = V2(0x11, 0x11, Addresses("203.0.113.9", "192.0.2.1", 51000, 5222)),
        ["v2 command 2"] = V2(0x22, 0x11, Addresses("203.0.113.9", "192.0.2.1", 51000, 5222)),
        ["v2 family 4"] = V2(0x21, 0x41, Addresses("203.0.113.9", "192.0.2.1", 51000, 5222)),
        ["v2 transport 3"] = V2(0x21, 0x13, Addresses("203.0.113.9", "192.0.2.1", 51000, 5222)),
        ["v2 DGRAM"] = V2(0x21, 0x12, Addresses("203.0.113.9", "192.0.2.1", 51000, 5222)),
        ["v2 TCP4 address block short"] = V2(0x21, 0x11, new byte[8]),
        ["v2 TCP6 address block short"] = V2(0x21, 0x21, new byte[12]),
        ["v2 oversized"] = V2(0x21, 0x11, [.. Addresses("203.0.113.9", "192.0.2.1", 51000, 5222), .. Tlv(0xE0, 1000)]),
        ["v2 length 65535"] = V2(0x21, 0x11, Addresses("203.0.113.9", "192.0.2.1", 51000, 5222), declaredLength: 65535),
        ["v2 truncated TLV"] = V2(0x21, 0x11, [.. Addresses("203.0.113.9", "192.0.2.1", 51000, 5222), 0x01, 0x00]),
        ["v2 TLV longer than header"] = V2(0x21, 0x11, [.. Addresses("203.0.113.9", "192.0.2.1", 51000, 5222), 0x01, 0x00, 0x09, 1, 2]),
    };

    [TestCase("v1 TCP4", 1, "203.0.113.9:51000", "192.0.2.1:5222")]
    [TestCase("v1 TCP6", 1, "[2001:db8::9]:51000", "[2001:db8::1]:5223")]
    [TestCase("v1 UNKNOWN", 1, null, null)]
    [TestCase("v1 UNKNOWN with addresses", 1, null, null)]
    [TestCase("v1 UNKNOWN of 107 bytes", 1, null, null)]
    [TestCase("v1 longest", 1, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")]
    [TestCase("v2 PROXY TCP4", 2, "203.0.113.9:51000", "192.0.2.1:5222")]
    [TestCase("v2 PROXY TCP6", 2, "[2001:db8::9]:51000", "[2001:db8::1]:5223")]
    [TestCase("v2 PROXY UNSPEC", 2, null, null)]
    [TestCase("v2 PROXY UNIX", 2, null, null)]
    [TestCase("v2 LOCAL", 2, null, null)]
    [TestCase("v2 LOCAL with addresses", 2, null, null)]
    [TestCase("v2 TCP4 with TLVs", 2, "203.0.113.9:51000", "192.0.2.1:5222")]
    [TestCase("v2 TCP4 IPv4-mapped source", 2, "[::ffff:203.0.113.9]:1", "[::ffff:192.0.2.1]:5222")]
    public void A_valid_header_is_parsed_the_same_whole_split_anywhere_and_byte_by_byte(string name, int version, string? source, string? destination)
    {
        var header = Inputs[name];
        byte[] input = [.. header, .. ClientBytes];
        void Check(ReadOnlySequence<byte> sequence, string how)
        {
            var status = ProxyHeaderParser.TryParse(sequence, out var parsed, out var length, out var error);
            Assert.That(status, Is.EqualTo(ProxyParseStatus.Done), $"{how}: {error}");
            Assert.That(length, Is.EqualTo(header.Length), how);
            Assert.That(parsed.Version, Is.EqualTo(version), how);
            Assert.That(parsed.Source?.ToString(), Is.EqualTo(source), how);
            Assert.That(parsed.Destination?.ToString(), Is.EqualTo(destination), how);
            Assert.That(parsed.Local, Is.EqualTo(name.Contains("LOCAL")), how);
        }
        Check(new ReadOnlySequence<byte>(input), "whole");
        for (int split = 1; split < input.Length; split++)
            Check(XmppStreamParserFeeder.Segmented(input, [split, input.Length]), $"split at {split}");
        Check(XmppStreamParserFeeder.Segmented(input, [1]), "one byte per segment");
        for (int prefix = 0; prefix < header.Length; prefix++)
            Assert.That(ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(header, 0, prefix), out _, out _, out _),
                Is.EqualTo(ProxyParseStatus.NeedMore), $"the first {prefix} bytes are a valid start");
    }

    [TestCase("wrong first byte", "not a PROXY protocol header")]
    [TestCase("TLS ClientHello", "not a PROXY protocol header")]
    [TestCase("v2 signature wrong", "not a PROXY protocol header")]
    [TestCase("v1 lower case", "not a PROXY protocol header")]
    [TestCase("v1 PROXYTCP4", "not a PROXY protocol header")]
    [TestCase("v1 no CR", "does not end with CRLF")]
    [TestCase("v1 too long", "longer than 107 bytes")]
    [TestCase("v1 no line end within 107 bytes", "longer than 107 bytes")]
    [TestCase("v1 unknown protocol", "unknown protocol 'UDP4'")]
    [TestCase("v1 five fields", "does not have 6 fields")]
    [TestCase("v1 two spaces", "does not have 6 fields")]
    [TestCase("v1 IPv6 in TCP4", "an address is not TCP4")]
    [TestCase("v1 IPv4 in TCP6", "an address is not TCP6")]
    [TestCase("v1 short IPv4", "an address is not TCP4")]
    [TestCase("v1 IPv4 leading zero", "an address is not TCP4")]
    [TestCase("v1 IPv6 scope", "an address is not TCP6")]
    [TestCase("v1 port too big", "a port is not a number")]
    [TestCase("v1 port not a number", "a port is not a number")]
    [TestCase("v1 NUL byte", "not printable ASCII")]
    [TestCase("v2 version 1", "unsupported version 1")]
    [TestCase("v2 command 2", "unknown command 2")]
    [TestCase("v2 family 4", "unknown address family 4")]
    [TestCase("v2 transport 3", "unknown transport 3")]
    [TestCase("v2 DGRAM", "only STREAM")]
    [TestCase("v2 TCP4 address block short", "shorter than 12")]
    [TestCase("v2 TCP6 address block short", "shorter than 36")]
    [TestCase("v2 oversized", "longer than 1024")]
    [TestCase("v2 length 65535", "longer than 1024")]
    [TestCase("v2 truncated TLV", "truncated TLV")]
    [TestCase("v2 TLV longer than header", "TLV longer than the header")]
    public void A_malformed_header_is_refused_with_its_reason_however_it_is_split(string name, string reason)
    {
        byte[] input = [.. Inputs[name], .. ClientBytes];
        void Check(ReadOnlySequence<byte> sequence, string how)
        {
            var status = ProxyHeaderParser.TryParse(sequence, out _, out _, out var error);
            Assert.That(status, Is.EqualTo(ProxyParseStatus.Invalid), how);
            Assert.That(error, Does.Contain(reason), how);
        }
        Check(new ReadOnlySequence<byte>(input), "whole");
        for (int split = 1; split < input.Length; split++)
            Check(XmppStreamParserFeeder.Segmented(input, [split, input.Length]), $"split at {split}");
        for (int prefix = 0; prefix <= input.Length; prefix++)
            Assert.That(ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(input, 0, prefix), out _, out _, out _),
                Is.Not.EqualTo(ProxyParseStatus.Done), $"the first {prefix} bytes");
    }

    [Test]
    public void A_header_is_never_accepted_from_fewer_bytes_than_it_declares()
    {
        // A truncated v2 header (the connection then closes) stays NeedMore: the middleware turns the close into a refusal.
        var header = Inputs["v2 TCP4 with TLVs"];
        Assert.That(ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(header, 0, header.Length - 1), out _, out _, out _),
            Is.EqualTo(ProxyParseStatus.NeedMore));
        Assert.That(ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(header), out _, out var length, out _), Is.EqualTo(ProxyParseStatus.Done));
        Assert.That(length, Is.EqualTo(header.Length));
    }

    [TestCase("127.0.0.1", "127.0.0.1", true)]
    [TestCase("127.0.0.1", "127.0.0.2", false)]
    [TestCase("10.0.0.0/8", "10.200.1.1", true)]
    [TestCase("10.0.0.0/8", "11.0.0.1", false)]
    [TestCase("10.0.0.0/8", "::ffff:10.1.2.3", true)]
    [TestCase("::1", "::1", true)]
    [TestCase("2001:db8::/32", "2001:db8:5::1", true)]
    [TestCase("2001:db8::/32", "2001:db9::1", false)]
    public void Trusted_proxies_are_matched_by_address_or_range(string entry, string address, bool trusted)
    {
        Assert.That(ProxyProtocolOptions.TryParseNetwork(entry, out var network), Is.True);
        var ip = IPAddress.Parse(address);
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        Assert.That(network.Contains(ip), Is.EqualTo(trusted));
    }

    [TestCase("10.0.0.1/8")]
    [TestCase("10.0.0.0/33")]
    [TestCase("haproxy.local")]
    [TestCase("")]
    public void A_trusted_proxy_entry_that_is_no_address_or_range_is_a_configuration_problem(string entry)
    {
        var problems = new ProxyProtocolOptions { TrustedProxies = [entry] }.Validate().ToList();
        Assert.That(problems, Has.Count.EqualTo(1));
        Assert.That(problems[0], Does.StartWith("Xmpp:ProxyProtocol:TrustedProxies"));
    }
}
