using System.Globalization;

namespace Xmpp.Protocol.Precis;

// The PRECIS derived property (RFC 8264 §9) and the string class checks (RFC 8264 §4.2, §4.3) built on it.
// The RFC defines the property from Unicode Character Database properties; .NET exposes only the general
// category (of the runtime's Unicode version) and normalization, so the remaining properties are tables here:
// the RFC 5892 §2.6 exceptions, Old Hangul Jamo, Default_Ignorable_Code_Point and noncharacters are listed
// exactly; the context rules of RFC 5892 Appendix A approximate the Script, Joining_Type and
// Canonical_Combining_Class properties by code point blocks and a list of viramas (see ContextAllows).
internal static class StringClasses
{
    // Computes the derived property of one scalar value, in the order of the RFC 8264 §8 pseudo-code.
    public static DerivedProperty GetDerivedProperty(int cp)
    {
        if (TryGetException(cp, out var exception))
            return exception;
        // BackwardCompatible (RFC 8264 §9.7) is empty.
        var category = CharUnicodeInfo.GetUnicodeCategory(cp);
        if (category == UnicodeCategory.OtherNotAssigned && !IsNoncharacter(cp))
            return DerivedProperty.Unassigned;
        if (cp is >= 0x21 and <= 0x7E)
            return DerivedProperty.PValid;
        if (cp is 0x200C or 0x200D)
            return DerivedProperty.ContextJ;
        if (IsOldHangulJamo(cp) || IsDefaultIgnorable(cp) || IsNoncharacter(cp))
            return DerivedProperty.Disallowed;
        if (category == UnicodeCategory.Control)
            return DerivedProperty.Disallowed;
        if (CodePoints.HasCompat(cp))
            return DerivedProperty.FreePValid;
        return category switch
        {
            // LetterDigits (RFC 8264 §9.1).
            UnicodeCategory.LowercaseLetter or UnicodeCategory.UppercaseLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ModifierLetter
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark => DerivedProperty.PValid,
            // OtherLetterDigits (§9.18), Spaces (§9.14), Symbols (§9.15), Punctuation (§9.16).
            UnicodeCategory.TitlecaseLetter or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
                or UnicodeCategory.EnclosingMark
                or UnicodeCategory.SpaceSeparator
                or UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                or UnicodeCategory.OtherSymbol
                or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
                or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
                or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
                or UnicodeCategory.OtherPunctuation => DerivedProperty.FreePValid,
            // Format, private use, surrogates, line and paragraph separators.
            _ => DerivedProperty.Disallowed,
        };
    }

    // Checks every code point against a string class, returning a reason on failure and null on success.
    public static string? Check(ReadOnlySpan<int> cps, StringClass stringClass)
    {
        for (var i = 0; i < cps.Length; i++)
        {
            var cp = cps[i];
            if (cp is >= 0x21 and <= 0x7E)
                continue;
            switch (GetDerivedProperty(cp))
            {
                case DerivedProperty.PValid:
                    break;
                case DerivedProperty.FreePValid when stringClass == StringClass.Freeform:
                    break;
                case DerivedProperty.FreePValid:
                    return $"{CodePoints.Describe(cp)} is not allowed in an identifier.";
                case DerivedProperty.ContextJ or DerivedProperty.ContextO:
                    if (!ContextAllows(cps, i))
                        return $"{CodePoints.Describe(cp)} is not allowed in this context.";
                    break;
                case DerivedProperty.Unassigned:
                    return $"{CodePoints.Describe(cp)} is unassigned.";
                default:
                    return $"{CodePoints.Describe(cp)} is not allowed.";
            }
        }
        return null;
    }

    // RFC 5892 §2.6.
    private static bool TryGetException(int cp, out DerivedProperty property)
    {
        switch (cp)
        {
            case 0x00DF or 0x03C2 or 0x06FD or 0x06FE or 0x0F0B or 0x3007:
                property = DerivedProperty.PValid;
                return true;
            case 0x00B7 or 0x0375 or 0x05F3 or 0x05F4 or 0x30FB or (>= 0x0660 and <= 0x0669) or (>= 0x06F0 and <= 0x06F9):
                property = DerivedProperty.ContextO;
                return true;
            case 0x0640 or 0x07FA or 0x302E or 0x302F or (>= 0x3031 and <= 0x3035) or 0x303B:
                property = DerivedProperty.Disallowed;
                return true;
            default:
                property = default;
                return false;
        }
    }

    // RFC 8264 §9.9: Hangul_Syllable_Type L, V or T.
    private static bool IsOldHangulJamo(int cp) =>
        cp is (>= 0x1100 and <= 0x11FF) or (>= 0xA960 and <= 0xA97C) or (>= 0xD7B0 and <= 0xD7C6) or (>= 0xD7CB and <= 0xD7FB);

    // RFC 8264 §9.13, Default_Ignorable_Code_Point from DerivedCoreProperties.txt.
    private static bool IsDefaultIgnorable(int cp) =>
        cp is 0x00AD or 0x034F or 0x061C or (>= 0x115F and <= 0x1160) or (>= 0x17B4 and <= 0x17B5)
            or (>= 0x180B and <= 0x180F) or (>= 0x200B and <= 0x200F) or (>= 0x202A and <= 0x202E)
            or (>= 0x2060 and <= 0x206F) or 0x3164 or (>= 0xFE00 and <= 0xFE0F) or 0xFEFF or 0xFFA0
            or (>= 0xFFF0 and <= 0xFFF8) or (>= 0x1BCA0 and <= 0x1BCA3) or (>= 0x1D173 and <= 0x1D17A)
            or (>= 0xE0000 and <= 0xE0FFF);

    private static bool IsNoncharacter(int cp) => cp is >= 0xFDD0 and <= 0xFDEF || (cp & 0xFFFE) == 0xFFFE;

    // Evaluates the RFC 5892 Appendix A rule for the CONTEXTJ or CONTEXTO code point at i.
    private static bool ContextAllows(ReadOnlySpan<int> cps, int i)
    {
        var cp = cps[i];
        var before = i > 0 ? cps[i - 1] : -1;
        var after = i + 1 < cps.Length ? cps[i + 1] : -1;
        switch (cp)
        {
            case 0x200C:
                // A.1: after a virama, or between joining letters. Joining_Type is approximated: a letter of a
                // joining script counts as joining on either side, transparent marks are skipped.
                return IsVirama(before) || (JoiningLetterBefore(cps, i) && JoiningLetterAfter(cps, i));
            case 0x200D:
                // A.2.
                return IsVirama(before);
            case 0x00B7:
                // A.3: only in the Catalan "l·l".
                return before == 0x006C && after == 0x006C;
            case 0x0375:
                // A.4: Greek keraia precedes Greek.
                return IsGreek(after);
            case 0x05F3 or 0x05F4:
                // A.5, A.6: geresh and gershayim follow Hebrew.
                return IsHebrew(before);
            case 0x30FB:
                // A.7: katakana middle dot needs some Hiragana, Katakana or Han in the string.
                foreach (var other in cps)
                {
                    if (other != 0x30FB && IsHiraganaKatakanaOrHan(other))
                        return true;
                }
                return false;
            case >= 0x0660 and <= 0x0669:
                // A.8: Arabic-Indic digits do not mix with extended Arabic-Indic digits.
                return !cps.ContainsAnyInRange(0x06F0, 0x06F9);
            case >= 0x06F0 and <= 0x06F9:
                // A.9.
                return !cps.ContainsAnyInRange(0x0660, 0x0669);
            default:
                return false;
        }
    }

    private static bool JoiningLetterBefore(ReadOnlySpan<int> cps, int i)
    {
        for (var j = i - 1; j >= 0; j--)
        {
            if (!IsTransparent(cps[j]))
                return IsJoiningLetter(cps[j]);
        }
        return false;
    }

    private static bool JoiningLetterAfter(ReadOnlySpan<int> cps, int i)
    {
        for (var j = i + 1; j < cps.Length; j++)
        {
            if (!IsTransparent(cps[j]))
                return IsJoiningLetter(cps[j]);
        }
        return false;
    }

    // Joining_Type T is mostly non-spacing and enclosing marks.
    private static bool IsTransparent(int cp) =>
        CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark;

    // The cursive joining scripts: Arabic (with supplements), Syriac, NKo, Mandaic, Mongolian, Phags-pa.
    private static bool IsJoiningLetter(int cp) =>
        cp is (>= 0x0600 and <= 0x07FF) or (>= 0x0840 and <= 0x08FF) or (>= 0x1800 and <= 0x18AF)
            or (>= 0xA840 and <= 0xA877) or (>= 0xFB50 and <= 0xFDFF) or (>= 0xFE70 and <= 0xFEFF)
        && CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.OtherLetter or UnicodeCategory.ModifierLetter;

    // Canonical_Combining_Class Virama (9), from UnicodeData.txt.
    private static bool IsVirama(int cp) =>
        cp is 0x094D or 0x09CD or 0x0A4D or 0x0ACD or 0x0B4D or 0x0BCD or 0x0C4D or 0x0CCD or 0x0D3B or 0x0D3C
            or 0x0D4D or 0x0DCA or 0x0E3A or 0x0EBA or 0x0F84 or 0x1039 or 0x103A or 0x1714 or 0x1715 or 0x1734
            or 0x17D2 or 0x1A60 or 0x1B44 or 0x1BAA or 0x1BAB or 0x1BF2 or 0x1BF3 or 0x2D7F or 0xA806 or 0xA82C
            or 0xA8C4 or 0xA953 or 0xA9C0 or 0xAAF6 or 0xABED or 0x10A3F or 0x11046 or 0x11070 or 0x1107F
            or 0x110B9 or 0x11133 or 0x11134 or 0x111C0 or 0x11235 or 0x112EA or 0x1134D or 0x11442 or 0x114C2
            or 0x115BF or 0x1163F or 0x116B6 or 0x1172B or 0x11839 or 0x1193D or 0x1193E or 0x119E0 or 0x11A34
            or 0x11A47 or 0x11A99 or 0x11C3F or 0x11D44 or 0x11D45 or 0x11D97;

    // Script Greek, approximated by the Greek and Coptic and Greek Extended blocks less the Coptic letters.
    private static bool IsGreek(int cp) =>
        cp is (>= 0x0370 and <= 0x03E1) or (>= 0x03F0 and <= 0x03FF) or (>= 0x1F00 and <= 0x1FFF);

    // Script Hebrew, approximated by the Hebrew blocks.
    private static bool IsHebrew(int cp) => cp is (>= 0x0590 and <= 0x05FF) or (>= 0xFB1D and <= 0xFB4F);

    // Scripts Hiragana, Katakana and Han, approximated by their blocks.
    private static bool IsHiraganaKatakanaOrHan(int cp) =>
        cp is (>= 0x3040 and <= 0x30FF) or (>= 0x31F0 and <= 0x31FF) or (>= 0xFF66 and <= 0xFF9F)
            or (>= 0x1B000 and <= 0x1B16F) or (>= 0x2E80 and <= 0x2FDF) or 0x3005 or 0x3007
            or (>= 0x3021 and <= 0x3029) or (>= 0x3038 and <= 0x303B) or (>= 0x3400 and <= 0x4DBF)
            or (>= 0x4E00 and <= 0x9FFF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x20000 and <= 0x3FFFF);
}
