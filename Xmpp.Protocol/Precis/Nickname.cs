using System.Text;

namespace Xmpp.Protocol.Precis;

// The Nickname profile of RFC 8266, for MUC occupant nicknames and display names.
internal static class Nickname
{
    // Enforces the profile (RFC 8266 §2.3), or with forComparison prepares the string for
    // comparison (§2.4, which adds case mapping); returns null with the reason in error on failure.
    public static string? Apply(string s, bool forComparison, out string? error)
    {
        error = null;
        // Printable ASCII without leading, trailing or doubled spaces is already mapped and NFKC-normalized.
        if (s.Length > 0 && CodePoints.IsAsciiRange(s, ' ', '~') && s[0] != ' ' && s[^1] != ' ' && !s.Contains("  ", StringComparison.Ordinal))
            return forComparison && CodePoints.HasAsciiUpper(s) ? s.ToLowerInvariant() : s;
        return Profile.ApplyUntilStable(s, forComparison ? ComparisonPass : EnforcementPass, out error);
    }

    private static string? EnforcementPass(string s, out string? error) => Pass(s, false, out error);

    private static string? ComparisonPass(string s, out string? error) => Pass(s, true, out error);

    // RFC 8266 §2.2: additional mapping (non-ASCII spaces to U+0020, trim, collapse), case mapping for
    // comparison only, NFKC (which also does the width mapping), then the FreeformClass check.
    private static string? Pass(string s, bool lowerCase, out string? error)
    {
        var collapsed = CollapseSpaces(CodePoints.MapNonAsciiSpaces(s));
        var cps = CodePoints.Decode(collapsed);
        if (cps is null)
        {
            error = "The string contains an unpaired surrogate.";
            return null;
        }
        var mapped = lowerCase ? CodePoints.ToLowerCase(cps) : collapsed;
        var normalized = CodePoints.Normalize(mapped, NormalizationForm.FormKC);
        if (normalized is null)
        {
            error = "The string cannot be normalized.";
            return null;
        }
        if (normalized.Length == 0)
        {
            error = "A nickname must not be empty or only spaces.";
            return null;
        }
        error = StringClasses.Check(CodePoints.Decode(normalized)!, StringClass.Freeform);
        return error is null ? normalized : null;
    }

    private static string CollapseSpaces(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s)
        {
            if (c == ' ' && (sb.Length == 0 || sb[^1] == ' '))
                continue;
            sb.Append(c);
        }
        if (sb.Length > 0 && sb[^1] == ' ')
            sb.Length--;
        return sb.ToString();
    }
}
