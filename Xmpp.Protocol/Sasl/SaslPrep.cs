using System.Globalization;
using System.Text;

namespace Xmpp.Protocol.Sasl;

/// <summary>The SASLprep profile of stringprep (RFC 4013) for SCRAM and PLAIN passwords and usernames.</summary>
/// <remarks>
/// Unassigned code points are allowed, as for stringprep "queries" (RFC 5802 §2.2). Normalization uses the
/// Unicode version of the runtime rather than Unicode 3.2, and the bidirectional categories of RFC 3454 §6 are
/// derived from general categories and the right-to-left script blocks, since .NET exposes no bidi class.
/// </remarks>
public static class SaslPrep
{
    /// <summary>Maps, normalizes (NFKC) and checks a string, throwing <see cref="FormatException"/> when it holds a prohibited character or fails the bidi rules.</summary>
    public static string Prepare(string s)
    {
        ArgumentNullException.ThrowIfNull(s);

        // RFC 4013 §2.1: B.1 characters vanish, non-ASCII spaces (C.1.2) become U+0020.
        var mapped = new StringBuilder(s.Length);
        foreach (var rune in Runes(s))
        {
            if (IsMappedToNothing(rune.Value))
                continue;
            if (IsNonAsciiSpace(rune.Value))
                mapped.Append(' ');
            else
                mapped.Append(rune.ToString());
        }

        // RFC 4013 §2.2: Unicode normalization form KC.
        string normalized;
        try
        {
            normalized = mapped.ToString().Normalize(NormalizationForm.FormKC);
        }
        catch (ArgumentException e)
        {
            throw new FormatException("The string cannot be normalized.", e);
        }

        // RFC 4013 §2.3 and §2.4.
        var hasRandAL = false;
        var hasL = false;
        foreach (var rune in Runes(normalized))
        {
            if (IsProhibited(rune.Value))
                throw new FormatException($"SASLprep prohibits U+{rune.Value:X4}.");
            hasRandAL |= IsRandAL(rune);
            hasL |= IsL(rune);
        }
        if (hasRandAL)
        {
            // RFC 3454 §6: right-to-left text holds no left-to-right characters and starts and ends with RandALCat.
            if (hasL)
                throw new FormatException("The string mixes right-to-left and left-to-right characters.");
            var runes = Runes(normalized);
            if (!IsRandAL(runes[0]) || !IsRandAL(runes[^1]))
                throw new FormatException("Right-to-left text must start and end with a right-to-left character.");
        }
        return normalized;
    }

    private static List<Rune> Runes(string s)
    {
        var runes = new List<Rune>(s.Length);
        var span = s.AsSpan();
        while (!span.IsEmpty)
        {
            // C.5: a lone surrogate is not a character at all.
            if (Rune.DecodeFromUtf16(span, out var rune, out var consumed) != System.Buffers.OperationStatus.Done)
                throw new FormatException("The string contains an unpaired surrogate.");
            runes.Add(rune);
            span = span[consumed..];
        }
        return runes;
    }

    // RFC 3454 B.1: commonly mapped to nothing.
    private static bool IsMappedToNothing(int c) =>
        c is 0x00AD or 0x034F or 0x1806 or (>= 0x180B and <= 0x180D) or (>= 0x200B and <= 0x200D)
            or 0x2060 or (>= 0xFE00 and <= 0xFE0F) or 0xFEFF;

    // RFC 3454 C.1.2: non-ASCII space characters (U+200B is also in B.1 and vanishes first).
    private static bool IsNonAsciiSpace(int c) =>
        c is 0x00A0 or 0x1680 or (>= 0x2000 and <= 0x200B) or 0x202F or 0x205F or 0x3000;

    private static bool IsProhibited(int c) =>
        IsNonAsciiSpace(c)
        // C.2.1 ASCII controls
        || c < 0x20 || c == 0x7F
        // C.2.2 non-ASCII controls
        || (c >= 0x80 && c <= 0x9F) || c is 0x06DD or 0x070F or 0x180E or 0x200C or 0x200D or 0x2028 or 0x2029
        || (c >= 0x2060 && c <= 0x2063) || c == 0xFEFF || (c >= 0x1D173 && c <= 0x1D17A)
        // C.3 private use
        || (c >= 0xE000 && c <= 0xF8FF) || (c >= 0xF0000 && c <= 0xFFFFD) || (c >= 0x100000 && c <= 0x10FFFD)
        // C.4 non-characters
        || (c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE
        // C.5 surrogates (only reachable as lone surrogates, rejected while decoding)
        || (c >= 0xD800 && c <= 0xDFFF)
        // C.6 inappropriate for plain text
        || (c >= 0xFFF9 && c <= 0xFFFD)
        // C.7 inappropriate for canonical representation
        || (c >= 0x2FF0 && c <= 0x2FFB)
        // C.8 change display properties or deprecated
        || c is 0x0340 or 0x0341 or 0x200E or 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x206A && c <= 0x206F)
        // C.9 tagging characters
        || c == 0xE0001 || (c >= 0xE0020 && c <= 0xE007F);

    private static bool IsRightToLeftBlock(int c) =>
        (c >= 0x0590 && c <= 0x08FF) || (c >= 0xFB1D && c <= 0xFDFF) || (c >= 0xFE70 && c <= 0xFEFE)
        || (c >= 0x10800 && c <= 0x10FFF) || (c >= 0x1E800 && c <= 0x1EFFF);

    // RandALCat (RFC 3454 D.1): bidi classes R and AL. Inside the right-to-left blocks that is every letter
    // and most punctuation; marks are NSM, digits EN or AN, and the listed symbols are neutral.
    private static bool IsRandAL(Rune rune)
    {
        var c = rune.Value;
        if (c == 0x200F)
            return true;
        if (!IsRightToLeftBlock(c))
            return false;
        if (c is 0x060C or 0x060E or 0x060F or (>= 0x066A and <= 0x066C) or 0x06DE or 0x06E9 or 0xFD3E or 0xFD3F or 0xFDFD)
            return false;
        return Rune.GetUnicodeCategory(rune) is not (UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.Format or UnicodeCategory.Control
            or UnicodeCategory.SpaceSeparator or UnicodeCategory.OtherNotAssigned);
    }

    // LCat (RFC 3454 D.2): bidi class L, which outside the right-to-left blocks is letters, spacing marks and letter numbers.
    private static bool IsL(Rune rune)
    {
        if (rune.Value == 0x200E)
            return true;
        if (IsRightToLeftBlock(rune.Value))
            return false;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.LetterNumber;
    }
}
