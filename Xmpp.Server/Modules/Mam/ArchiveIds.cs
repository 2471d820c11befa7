using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Xmpp.Server.Modules.Mam;

/// Archive ids are UUIDs (XEP-0359 §2.1 recommends them) of version 7 (RFC 9562 §5.7): 48 bits of Unix milliseconds,
/// then 74 random bits. XEP-0359 §3 (rule 2) asks that ids be unpredictable: 74 bits from a cryptographic generator
/// cannot be guessed, whoever knows the millisecond. §4 forbids inferring anything from an id, such as the archive's
/// size: the time in it is the instant the server archived the message, which the archive shows its owner anyway
/// (the XEP-0203 stamp of every MAM result), and it counts nothing. Time order is the point: a database index over
/// the ids then grows at its right end instead of touching a random page per insert (with random ids, nine in ten of
/// the archive's full-page writes to the PostgreSQL WAL were that index's;
/// bench/results/2026-12-07-postgresql-archiving-profile.md).
///
/// Guid.CreateVersion7 (like Guid.NewGuid) asks the kernel for random bytes on every call (a syscall costing about
/// 2 µs of CPU here, 16 % of the server's CPU with every message archived twice), so each thread takes them from the
/// same cryptographic generator 4 KiB at a time.
internal static class ArchiveIds
{
    private const int BufferBytes = 4096;

    [ThreadStatic] private static byte[]? t_random;
    [ThreadStatic] private static int t_used;

    public static string Next() => Next(DateTimeOffset.UtcNow);

    internal static string Next(DateTimeOffset now)
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
        // RFC 9562 §5.7 (big-endian layout): bytes 0-5 the Unix time in milliseconds, version 7 in the high nibble of
        // byte 6, variant 10 in the top bits of byte 8; the other 74 bits stay random.
        Span<byte> millis = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(millis, now.ToUnixTimeMilliseconds());
        millis[2..].CopyTo(bytes);
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x70);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true).ToString("D");
    }
}
