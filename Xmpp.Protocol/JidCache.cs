using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Xmpp.Protocol;

/// <summary>
/// Recently seen addresses, shared by every connection: the 'to' and 'from' of most stanzas name the same few
/// thousand online users over and over, so the parser hands out one string per address and the router one parsed
/// <see cref="Jid"/>, instead of a new string and a new JID (with its part strings) per stanza.
/// </summary>
/// <remarks>
/// A fixed table of slots indexed by a hash of the address's UTF-8 bytes; a new address replaces whatever held its
/// slot, so the table never grows, whatever peers send. Entries are immutable and swapped whole, so readers take no
/// lock. A JID's parse depends only on its string, so a cached one is exactly what <see cref="Jid.TryParse"/> returns.
/// </remarks>
public static class JidCache
{
    /// <summary>Longer addresses are not cached (they are rare, and the table's memory stays bounded).</summary>
    public const int MaxBytes = 128;

    private const int Slots = 8192; // a power of two

    private sealed class Entry(byte[] utf8, string text, Jid? jid)
    {
        public readonly byte[] Utf8 = utf8;
        public readonly string Text = text;
        public readonly Jid? Jid = jid;
    }

    private static readonly Entry?[] Table = new Entry?[Slots];

    // HashCode is seeded per process, so a peer cannot choose addresses that all land in one slot.
    private static int SlotOf(ReadOnlySpan<byte> utf8)
    {
        var hash = new HashCode();
        hash.AddBytes(utf8);
        return hash.ToHashCode() & (Slots - 1);
    }

    /// <summary>The cached string for these UTF-8 bytes (already validated by the caller), or null when none is cached.</summary>
    public static string? Find(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxBytes) return null;
        var entry = Volatile.Read(ref Table[SlotOf(utf8)]);
        return entry is not null && utf8.SequenceEqual(entry.Utf8) ? entry.Text : null;
    }

    /// <summary>Remembers a decoded address string under its UTF-8 bytes, so the next <see cref="Find"/> returns it.</summary>
    public static void Add(ReadOnlySpan<byte> utf8, string text)
    {
        if (utf8.Length > MaxBytes) return;
        Volatile.Write(ref Table[SlotOf(utf8)], new Entry(utf8.ToArray(), text, null));
    }

    /// <summary>Parses an address like <see cref="Jid.TryParse"/>, answering from the cache when the same address was parsed recently.</summary>
    public static bool TryParse(string? s, [NotNullWhen(true)] out Jid? jid)
    {
        if (s is null || s.Length > MaxBytes)
            return Jid.TryParse(s, out jid);
        Span<byte> utf8 = stackalloc byte[MaxBytes * 3];
        int length = Encoding.UTF8.GetBytes(s, utf8);
        utf8 = utf8[..length];
        if (length > MaxBytes)
            return Jid.TryParse(s, out jid);
        ref var slot = ref Table[SlotOf(utf8)];
        var entry = Volatile.Read(ref slot);
        // Compared as strings, not bytes: a string with a lone surrogate encodes like one with U+FFFD.
        if (entry is { Jid: { } cached } && string.Equals(entry.Text, s, StringComparison.Ordinal))
        {
            jid = cached;
            return true;
        }
        if (!Jid.TryParse(s, out jid)) return false;
        // The string the parser interned for these bytes stays the entry's text, so both lookups keep hitting.
        bool same = entry is not null && string.Equals(entry.Text, s, StringComparison.Ordinal);
        Volatile.Write(ref slot, same ? new Entry(entry!.Utf8, entry.Text, jid) : new Entry(utf8.ToArray(), s, jid));
        return true;
    }
}
