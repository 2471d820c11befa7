using System.Buffers;
using System.Globalization;
using System.Text;

namespace Xmpp.Protocol.Precis;

// Small helpers shared by the PRECIS profiles: decoding to code points and the common mapping steps.
internal static class CodePoints
{
    // Decodes UTF-16 into scalar values, or returns null when the string holds an unpaired surrogate.
    public static int[]? Decode(string s)
    {
        var result = new int[s.Length];
        var count = 0;
        var span = s.AsSpan();
        while (!span.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(span, out var rune, out var consumed) != OperationStatus.Done)
                return null;
            result[count++] = rune.Value;
            span = span[consumed..];
        }
        return count == result.Length ? result : result[..count];
    }

    public static bool IsAsciiRange(ReadOnlySpan<char> s, char first, char last)
    {
        foreach (var c in s)
        {
            if (c < first || c > last)
                return false;
        }
        return true;
    }

    public static bool HasAsciiUpper(ReadOnlySpan<char> s)
    {
        // A plain loop: MemoryExtensions.ContainsAnyInRange allocated 96 bytes a call here (.NET 10, Debug) on the parse hot path.
        foreach (var c in s)
        {
            if (c is >= 'A' and <= 'Z')
                return true;
        }
        return false;
    }

    public static int Utf8Length(string s) => Encoding.UTF8.GetByteCount(s);

    // RFC 8265 §4.2.1 and RFC 8266 §2.2: every non-ASCII space (general category Zs) becomes U+0020.
    public static string MapNonAsciiSpaces(string s)
    {
        StringBuilder? sb = null;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            // Every Zs code point is in the BMP, so a UTF-16 unit test is exact.
            var isSpace = c > 0x7F && !char.IsSurrogate(c) && CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.SpaceSeparator;
            if (isSpace && sb is null)
                sb = new StringBuilder(s.Length).Append(s, 0, i);
            sb?.Append(isSpace ? ' ' : c);
        }
        return sb?.ToString() ?? s;
    }

    // Normalizes, reporting failure (an unpaired surrogate) as null instead of an exception.
    public static string? Normalize(string s, NormalizationForm form)
    {
        try
        {
            return s.IsNormalized(form) ? s : s.Normalize(form);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    // RFC 8264 §9.17 HasCompat: toNFKC(cp) != cp.
    public static bool HasCompat(int cp)
    {
        Span<char> buffer = stackalloc char[2];
        var length = new Rune(cp).EncodeToUtf16(buffer);
        return !((ReadOnlySpan<char>)buffer[..length]).IsNormalized(NormalizationForm.FormKC);
    }

    public static string Describe(int cp) => $"U+{cp:X4}";

    // The Unicode toLowerCase() operation that RFC 8264 §5.2.3 names: .NET's invariant simple lowercase mapping,
    // plus the two unconditional or language-neutral full mappings it lacks, U+0130 to "i\u0307" and the Greek
    // final sigma (Unicode §3.13, with the Cased and Case_Ignorable properties approximated by general category).
    public static string ToLowerCase(ReadOnlySpan<int> cps)
    {
        var sb = new StringBuilder(cps.Length);
        for (var i = 0; i < cps.Length; i++)
        {
            var cp = cps[i];
            if (cp == 0x03A3)
                sb.Append(IsFinalSigma(cps, i) ? '\u03C2' : '\u03C3');
            else if (cp == 0x0130)
                sb.Append("i\u0307");
            else if (cp < 0x80)
                sb.Append(cp is >= 'A' and <= 'Z' ? (char)(cp + 32) : (char)cp);
            else
                sb.Append(Rune.ToLowerInvariant(new Rune(cp)).ToString());
        }
        return sb.ToString();
    }

    private static bool IsFinalSigma(ReadOnlySpan<int> cps, int i)
    {
        var j = i - 1;
        while (j >= 0 && IsCaseIgnorable(cps[j]))
            j--;
        if (j < 0 || !IsCased(cps[j]))
            return false;
        j = i + 1;
        while (j < cps.Length && IsCaseIgnorable(cps[j]))
            j++;
        return j == cps.Length || !IsCased(cps[j]);
    }

    private static bool IsCased(int cp) =>
        CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(int cp) =>
        cp is 0x0027 or 0x002E or 0x003A or 0x00B7 or 0x0387 or 0x05F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027
            or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A
        || CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
}
