using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Xmpp.Server.ProxyProtocol;

public enum ProxyParseStatus { NeedMore, Done, Invalid }

/// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load balancer sends before the
/// client's first byte. Stateless: each call looks at everything buffered so far, so a header split over reads is
/// parsed again once more bytes arrive (it is at most MaxHeaderBytes). Nothing is guessed: every input is either a
/// complete header, a valid prefix of one, or invalid.
public static class ProxyHeaderParser
{
    /// Longest header accepted. Version 1 is at most 107 bytes by definition; version 2 is 16 bytes plus the
    /// addresses (at most 216 for AF_UNIX) plus TLVs, which HAProxy sends only when told to (proxy-v2-options).
    public const int MaxHeaderBytes = 1024;

    public const int MaxV1Bytes = 107;

    private static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];
    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    /// Done: header holds the result and length the bytes it took. Invalid: error says why in a few words.
    public static ProxyParseStatus TryParse(in ReadOnlySequence<byte> buffer, out ProxyHeader header, out int length, out string? error)
    {
        Span<byte> copy = stackalloc byte[MaxHeaderBytes];
        var n = (int)Math.Min(buffer.Length, MaxHeaderBytes);
        buffer.Slice(0, n).CopyTo(copy);
        return TryParse(copy[..n], buffer.Length > MaxHeaderBytes, out header, out length, out error);
    }

    public static ProxyParseStatus TryParse(ReadOnlySpan<byte> data, out ProxyHeader header, out int length, out string? error) =>
        TryParse(data[..Math.Min(data.Length, MaxHeaderBytes)], data.Length > MaxHeaderBytes, out header, out length, out error);

    private static ProxyParseStatus TryParse(ReadOnlySpan<byte> data, bool more, out ProxyHeader header, out int length, out string? error)
    {
        header = default;
        length = 0;
        error = null;
        if (data.IsEmpty) return ProxyParseStatus.NeedMore;
        if (data[0] == V2Signature[0]) return ParseV2(data, out header, out length, out error);
        if (data[0] == V1Prefix[0]) return ParseV1(data, more, out header, out length, out error);
        return Fail("not a PROXY protocol header", out error);
    }

    private static ProxyParseStatus Fail(string why, out string? error)
    {
        error = why;
        return ProxyParseStatus.Invalid;
    }

    private static bool PrefixMatches(ReadOnlySpan<byte> data, ReadOnlySpan<byte> expected) =>
        data[..Math.Min(data.Length, expected.Length)].SequenceEqual(expected[..Math.Min(data.Length, expected.Length)]);

    // Version 2: a 12-byte signature, version and command, family and transport, a 16-bit length, the addresses, TLVs.
    private static ProxyParseStatus ParseV2(ReadOnlySpan<byte> data, out ProxyHeader header, out int length, out string? error)
    {
        header = default;
        length = 0;
        error = null;
        if (!PrefixMatches(data, V2Signature)) return Fail("not a PROXY protocol header", out error);
        if (data.Length < 13) return ProxyParseStatus.NeedMore;
        if (data[12] >> 4 != 2) return Fail($"unsupported version {data[12] >> 4}", out error);
        var command = data[12] & 0x0F;
        if (command > 1) return Fail($"unknown command {command}", out error);
        if (data.Length < 16) return ProxyParseStatus.NeedMore;
        int family = data[13] >> 4, transport = data[13] & 0x0F;
        int rest = BinaryPrimitives.ReadUInt16BigEndian(data[14..16]);
        if (16 + rest > MaxHeaderBytes) return Fail($"header of {16 + rest} bytes is longer than {MaxHeaderBytes}", out error);
        if (data.Length < 16 + rest) return ProxyParseStatus.NeedMore;
        var body = data.Slice(16, rest);
        int addressBytes = family switch { 1 => 12, 2 => 36, 3 => 216, _ => 0 };
        if (family > 3) return Fail($"unknown address family {family}", out error);
        if (transport > 2) return Fail($"unknown transport {transport}", out error);
        if (body.Length < addressBytes) return Fail($"address block of {body.Length} bytes is shorter than {addressBytes}", out error);
        // TLVs (type, 16-bit length, value) follow the addresses; none is needed here, but they must fill the rest
        // exactly, or the length field and the content disagree.
        var tlvs = body[addressBytes..];
        while (!tlvs.IsEmpty)
        {
            if (tlvs.Length < 3) return Fail("truncated TLV", out error);
            int tlvLength = BinaryPrimitives.ReadUInt16BigEndian(tlvs[1..3]);
            if (tlvs.Length < 3 + tlvLength) return Fail("TLV longer than the header", out error);
            tlvs = tlvs[(3 + tlvLength)..];
        }
        length = 16 + rest;
        // LOCAL (health checks and the proxy's own connections): the addresses are ignored, the real ones stay.
        if (command == 0)
        {
            header = new ProxyHeader(2, true, null, null);
            return ProxyParseStatus.Done;
        }
        if (family is 1 or 2 && transport != 1) return Fail("a TCP listener accepts only STREAM connections", out error);
        header = family switch
        {
            1 => new ProxyHeader(2, false,
                new IPEndPoint(new IPAddress(body[0..4]), BinaryPrimitives.ReadUInt16BigEndian(body[8..10])),
                new IPEndPoint(new IPAddress(body[4..8]), BinaryPrimitives.ReadUInt16BigEndian(body[10..12]))),
            2 => new ProxyHeader(2, false,
                new IPEndPoint(new IPAddress(body[0..16]), BinaryPrimitives.ReadUInt16BigEndian(body[32..34])),
                new IPEndPoint(new IPAddress(body[16..32]), BinaryPrimitives.ReadUInt16BigEndian(body[34..36]))),
            // UNSPEC or UNIX: no IP address to give; the connection keeps the proxy's.
            _ => new ProxyHeader(2, false, null, null),
        };
        return ProxyParseStatus.Done;
    }

    // Version 1: one text line, "PROXY TCP4 src dst sport dport\r\n" (TCP6 likewise), or "PROXY UNKNOWN ...\r\n".
    private static ProxyParseStatus ParseV1(ReadOnlySpan<byte> data, bool more, out ProxyHeader header, out int length, out string? error)
    {
        header = default;
        length = 0;
        error = null;
        if (!PrefixMatches(data, V1Prefix)) return Fail("not a PROXY protocol header", out error);
        var window = data[..Math.Min(data.Length, MaxV1Bytes)];
        var end = window.IndexOf((byte)'\n');
        if (end < 0) return window.Length >= MaxV1Bytes || more ? Fail($"version 1 line longer than {MaxV1Bytes} bytes", out error) : ProxyParseStatus.NeedMore;
        if (end == 0 || window[end - 1] != '\r') return Fail("version 1 line does not end with CRLF", out error);
        var line = window[..(end - 1)];
        foreach (var b in line)
            if (b is < 0x20 or > 0x7E) return Fail("version 1 line holds a byte that is not printable ASCII", out error);
        var parts = Encoding.ASCII.GetString(line).Split(' ');
        length = end + 1;
        if (parts.Length >= 2 && parts[1] == "UNKNOWN")
        {
            header = new ProxyHeader(1, false, null, null);
            return ProxyParseStatus.Done;
        }
        if (parts.Length != 6) return Fail("version 1 line does not have 6 fields", out error);
        var family = parts[1] switch { "TCP4" => AddressFamily.InterNetwork, "TCP6" => AddressFamily.InterNetworkV6, _ => AddressFamily.Unknown };
        if (family == AddressFamily.Unknown) return Fail($"unknown protocol '{parts[1]}'", out error);
        if (!TryAddress(parts[2], family, out var source) || !TryAddress(parts[3], family, out var destination))
            return Fail($"an address is not {parts[1]}", out error);
        if (!TryPort(parts[4], out var sourcePort) || !TryPort(parts[5], out var destinationPort))
            return Fail("a port is not a number from 0 to 65535", out error);
        header = new ProxyHeader(1, false, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destinationPort));
        return ProxyParseStatus.Done;
    }

    private static bool TryAddress(string text, AddressFamily family, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.Length == 0 || text.Contains('%') || !IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != family) return false;
        // IPAddress.TryParse also takes "10.1" and "0x7f.1"; the protocol allows only the dotted quad.
        if (family == AddressFamily.InterNetwork && parsed.ToString() != text) return false;
        address = parsed;
        return true;
    }

    private static bool TryPort(string text, out int port)
    {
        port = 0;
        if (text.Length is 0 or > 5 || text.Any(c => c is < '0' or > '9') || text.Length > 1 && text[0] == '0') return false;
        port = int.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        return port <= 65535;
    }
}
