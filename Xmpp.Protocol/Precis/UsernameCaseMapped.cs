using System.Text;

namespace Xmpp.Protocol.Precis;

// The UsernameCaseMapped profile of RFC 8265 §3.3, which RFC 7622 §3.3.2 applies to localparts.
internal static class UsernameCaseMapped
{
    // Enforces the profile, returning the result, or null with the reason in error.
    public static string? Enforce(string s, out string? error)
    {
        error = null;
        if (s.Length == 0)
        {
            error = "A username must not be empty.";
            return null;
        }
        // Printable ASCII is PVALID, already in NFC and free of right-to-left text: only case mapping can apply.
        if (CodePoints.IsAsciiRange(s, '!', '~'))
            return CodePoints.HasAsciiUpper(s) ? s.ToLowerInvariant() : s;
        return Profile.ApplyUntilStable(s, EnforceOnce, out error);
    }

    // RFC 8264 §7: width mapping, (no additional mapping), case mapping, normalization, directionality, then the
    // IdentifierClass check.
    private static string? EnforceOnce(string s, out string? error)
    {
        var cps = CodePoints.Decode(s);
        if (cps is null)
        {
            error = "The string contains an unpaired surrogate.";
            return null;
        }
        var widthMapped = CodePoints.Decode(MapWidth(cps))!;
        var normalized = CodePoints.Normalize(CodePoints.ToLowerCase(widthMapped), NormalizationForm.FormC);
        if (normalized is null)
        {
            error = "The string cannot be normalized.";
            return null;
        }
        var result = CodePoints.Decode(normalized)!;
        error = StringClasses.Check(result, StringClass.Identifier);
        if (error is null && BidiRule.HasRightToLeft(result))
            error = BidiRule.Check(result);
        if (error is null && result.Length == 0)
            error = "A username must not be empty.";
        return error is null ? normalized : null;
    }

    // RFC 8265 §3.3.1 width mapping: full-width and half-width forms (decomposition tags <wide> and <narrow>,
    // all of which sit at U+3000 and U+FF01..U+FFEE) become their decompositions.
    private static string MapWidth(ReadOnlySpan<int> cps)
    {
        var sb = new StringBuilder(cps.Length);
        foreach (var cp in cps)
        {
            var text = new Rune(cp).ToString();
            sb.Append(cp is 0x3000 or (>= 0xFF01 and <= 0xFFEE) ? text.Normalize(NormalizationForm.FormKC) : text);
        }
        return sb.ToString();
    }
}
