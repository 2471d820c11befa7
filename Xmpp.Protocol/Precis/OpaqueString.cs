using System.Text;

namespace Xmpp.Protocol.Precis;

// The OpaqueString profile of RFC 8265 §4.2, for passwords and (RFC 7622 §3.4.2) resourceparts.
internal static class OpaqueString
{
    // Enforces the profile, returning the result, or null with the reason in error.
    public static string? Enforce(string s, out string? error)
    {
        error = null;
        if (s.Length == 0)
        {
            error = "The string must not be empty.";
            return null;
        }
        // Printable ASCII and the ASCII space are allowed and need no mapping or normalization; case is preserved.
        if (CodePoints.IsAsciiRange(s, ' ', '~'))
            return s;
        return Profile.ApplyUntilStable(s, EnforceOnce, out error);
    }

    // RFC 8265 §4.2.2: no width or case mapping; non-ASCII spaces to U+0020; NFC; the FreeformClass check.
    private static string? EnforceOnce(string s, out string? error)
    {
        if (CodePoints.Decode(s) is null)
        {
            error = "The string contains an unpaired surrogate.";
            return null;
        }
        var normalized = CodePoints.Normalize(CodePoints.MapNonAsciiSpaces(s), NormalizationForm.FormC);
        if (normalized is null)
        {
            error = "The string cannot be normalized.";
            return null;
        }
        error = StringClasses.Check(CodePoints.Decode(normalized)!, StringClass.Freeform);
        return error is null ? normalized : null;
    }
}
