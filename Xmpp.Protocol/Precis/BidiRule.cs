using System.Globalization;

namespace Xmpp.Protocol.Precis;

// The Bidi Rule of RFC 5893 §2, applied to strings (RFC 8265 §3.3.1) and to domain labels.
// .NET exposes no Bidi_Class, so GetClass approximates it: the right-to-left blocks give R or AL,
// digits, separators and terminators are listed, marks are NSM, and everything else is L for letters, digits and
// spacing marks and ON otherwise. The approximation agrees with DerivedBidiClass.txt for the letters, digits and
// marks that PRECIS identifiers can contain; it may misclassify a rare symbol inside a right-to-left block.
internal static class BidiRule
{
    // True when the text holds a right-to-left code point (bidi class R, AL or AN), so the rule applies.
    public static bool HasRightToLeft(ReadOnlySpan<int> cps)
    {
        foreach (var cp in cps)
        {
            if (cp >= 0x0590 && GetClass(cp) is BidiClass.R or BidiClass.AL or BidiClass.AN)
                return true;
        }
        return false;
    }

    // Returns null when the text satisfies the six conditions of RFC 5893 §2, otherwise the reason.
    public static string? Check(ReadOnlySpan<int> cps)
    {
        if (cps.IsEmpty)
            return null;
        var first = GetClass(cps[0]);
        // Condition 1.
        if (first is not (BidiClass.L or BidiClass.R or BidiClass.AL))
            return "Bidirectional text must start with a letter that has a direction.";

        // The last code point that is not a non-spacing mark decides conditions 3 and 6.
        var end = cps.Length - 1;
        while (end > 0 && GetClass(cps[end]) == BidiClass.NSM)
            end--;
        var last = GetClass(cps[end]);

        if (first == BidiClass.L)
        {
            foreach (var cp in cps)
            {
                // Condition 5.
                if (GetClass(cp) is not (BidiClass.L or BidiClass.EN or BidiClass.ES or BidiClass.CS or BidiClass.ET
                    or BidiClass.ON or BidiClass.BN or BidiClass.NSM))
                    return "Left-to-right text contains a right-to-left character.";
            }
            // Condition 6.
            return last is BidiClass.L or BidiClass.EN ? null : "Left-to-right text must end with a letter or digit.";
        }

        var hasEn = false;
        var hasAn = false;
        foreach (var cp in cps)
        {
            var c = GetClass(cp);
            // Condition 2.
            if (c is BidiClass.L or BidiClass.WS)
                return "Right-to-left text contains a left-to-right character.";
            hasEn |= c == BidiClass.EN;
            hasAn |= c == BidiClass.AN;
        }
        // Condition 4.
        if (hasEn && hasAn)
            return "Right-to-left text mixes European and Arabic-Indic digits.";
        // Condition 3.
        return last is BidiClass.R or BidiClass.AL or BidiClass.EN or BidiClass.AN
            ? null
            : "Right-to-left text must end with a right-to-left character or a digit.";
    }

    // Approximates the Bidi_Class of a scalar value (see the type remarks).
    public static BidiClass GetClass(int cp)
    {
        switch (cp)
        {
            case (>= 0x0600 and <= 0x0605) or (>= 0x0660 and <= 0x0669) or 0x066B or 0x066C or 0x06DD
                or 0x0890 or 0x0891 or 0x08E2 or (>= 0x10D30 and <= 0x10D39) or (>= 0x10E60 and <= 0x10E7E):
                return BidiClass.AN;
            case (>= 0x0030 and <= 0x0039) or 0x00B2 or 0x00B3 or 0x00B9 or (>= 0x06F0 and <= 0x06F9) or 0x2070
                or (>= 0x2074 and <= 0x2079) or (>= 0x2080 and <= 0x2089) or (>= 0x2488 and <= 0x249B)
                or (>= 0xFF10 and <= 0xFF19) or (>= 0x1D7CE and <= 0x1D7FF) or (>= 0x1F100 and <= 0x1F10A):
                return BidiClass.EN;
            case 0x002B or 0x002D or 0x207A or 0x207B or 0x208A or 0x208B or 0x2212 or 0xFB29 or 0xFE62 or 0xFE63
                or 0xFF0B or 0xFF0D:
                return BidiClass.ES;
            case 0x002C or 0x002E or 0x002F or 0x003A or 0x00A0 or 0x060C or 0x202F or 0x2044 or 0xFE50 or 0xFE52
                or 0xFE55 or 0xFF0C or 0xFF0E or 0xFF0F or 0xFF1A:
                return BidiClass.CS;
            case 0x0023 or 0x0024 or 0x0025 or (>= 0x00A2 and <= 0x00A5) or 0x00B0 or 0x00B1 or 0x0609 or 0x060A
                or 0x066A or (>= 0x2030 and <= 0x2034) or 0x212E or 0x2213 or 0xFE5F or 0xFE69 or 0xFE6A
                or (>= 0xFF03 and <= 0xFF05) or 0xFFE0 or 0xFFE1 or 0xFFE5 or 0xFFE6:
                return BidiClass.ET;
            case 0x200E:
                return BidiClass.L;
            case 0x200F:
                return BidiClass.R;
            // Neutral punctuation inside the Arabic blocks.
            case 0x060E or 0x060F or 0x06DE or 0x06E9 or 0xFD3E or 0xFD3F:
                return BidiClass.ON;
        }

        var category = CharUnicodeInfo.GetUnicodeCategory(cp);
        switch (category)
        {
            case UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark:
                return BidiClass.NSM;
            case UnicodeCategory.Control or UnicodeCategory.Format:
                return BidiClass.BN;
            case UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator:
                return BidiClass.WS;
            case UnicodeCategory.CurrencySymbol:
                return BidiClass.ET;
        }

        if (IsArabicLetterBlock(cp))
            return BidiClass.AL;
        if (IsRightToLeftBlock(cp))
            return BidiClass.R;
        return category is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber
            or UnicodeCategory.PrivateUse
            ? BidiClass.L
            : BidiClass.ON;
    }

    // Arabic, Syriac, Arabic Supplement, Thaana, Syriac Supplement, Arabic Extended-A/B, the Arabic presentation
    // forms, Hanifi Rohingya, Arabic Extended-C, Sogdian and the Arabic mathematical alphabet: Bidi_Class AL.
    private static bool IsArabicLetterBlock(int cp) =>
        cp is (>= 0x0600 and <= 0x07BF) or (>= 0x0860 and <= 0x08FF) or (>= 0xFB50 and <= 0xFDFF)
            or (>= 0xFE70 and <= 0xFEFF) or (>= 0x10D00 and <= 0x10D3F) or (>= 0x10EC0 and <= 0x10EFF)
            or (>= 0x10F30 and <= 0x10F6F) or (>= 0x1EE00 and <= 0x1EEFF);

    // Hebrew, NKo, Samaritan, Mandaic, the Hebrew presentation forms and the other historic right-to-left
    // scripts of the SMP: Bidi_Class R.
    private static bool IsRightToLeftBlock(int cp) =>
        cp is (>= 0x0590 and <= 0x05FF) or (>= 0x07C0 and <= 0x085F) or (>= 0xFB1D and <= 0xFB4F)
            or (>= 0x10800 and <= 0x10FFF) or (>= 0x1E800 and <= 0x1EFFF);
}
