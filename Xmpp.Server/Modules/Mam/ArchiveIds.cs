using System.Security.Cryptography;

namespace Xmpp.Server.Modules.Mam;

/// XEP-0313 §3: archive ids are unpredictable; XEP-0359 §3.1 recommends UUIDs (version 4: random). Guid.NewGuid asks
/// the kernel for 16 random bytes on every call (a syscall costing about 2 µs of CPU here, 16 % of the server's CPU
/// with every message archived twice), so each thread takes them from the same cryptographic generator 4 KiB at a time.
internal static class ArchiveIds
{
    private const int BufferBytes = 4096;

    [ThreadStatic] private static byte[]? t_random;
    [ThreadStatic] private static int t_used;

    public static string Next()
    {
        var random = t_random ??= new byte[BufferBytes];
        if (t_used == 0 || t_used == BufferBytes)
        {
            RandomNumberGenerator.Fill(random);
            t_used = 0;
        }
        Span<byte> bytes = stackalloc byte[16];
        random.AsSpan(t_used, 16).CopyTo(bytes);
        random.AsSpan(t_used, 16).Clear();
        t_used += 16;
        // RFC 9562 §5.4: version 4 in the high nibble of byte 6, variant 10 in the top bits of byte 8 (big-endian layout).
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x40);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true).ToString("D");
    }
}
