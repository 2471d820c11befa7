using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Xmpp.Protocol.Precis;

// Prepares a JID domainpart (RFC 7622 §3.2) so that equal domains have one spelling.
// Names go through UTS #46 processing (IdnMapping with STD3 rules): case folding, width mapping,
// NFC, label checks, then A-labels are turned back into U-labels so "xn--mnchen-3ya.de" and "münchen.de" compare
// equal. UTS #46 is slightly more permissive than IDNA2008 (it maps rather than rejects some compatibility
// characters and allows symbols such as emoji); we accept that rather than carry our own IDNA2008 tables.
internal static class DomainPreparation
{
    // RFC 1035 §2.3.4 as IdnMapping applies it: 63 octets a label and 253 for the name without its root dot.
    private const int MaxLabel = 63;
    private const int MaxName = 253;

    // Prepares the domain, returning the canonical form, or null with the reason in error.
    public static string? Prepare(string s, out string? error)
    {
        error = null;
        if (IsCanonicalAscii(s))
            return s;
        if (s.Length == 0)
        {
            error = "The domainpart must not be empty.";
            return null;
        }

        // RFC 7622 §3.2: a trailing label separator is stripped before the JID is used or compared.
        var name = IsLabelSeparator(s[^1]) ? s[..^1] : s;
        if (name.Length == 0 || IsLabelSeparator(name[^1]))
        {
            error = "The domainpart has an empty label.";
            return null;
        }
        if (name[0] == '[')
            return PrepareIPv6(name, out error);
        if (CodePoints.IsAsciiRange(name, '\0', '\x7F'))
        {
            var lower = CodePoints.HasAsciiUpper(name) ? name.ToLowerInvariant() : name;
            if (IsCanonicalAscii(lower))
                return lower;
        }
        return PrepareWithIdna(name, out error);
    }

    // RFC 5890 §2.3.2.1: the full stop and its ideographic, fullwidth and halfwidth forms all separate labels.
    private static bool IsLabelSeparator(char c) => c is '.' or '\u3002' or '\uFF0E' or '\uFF61';

    // The full UTS #46 path; the fast path must agree with it for every input it accepts.
    internal static string? PrepareWithIdna(string name, out string? error)
    {
        error = null;
        var idn = new IdnMapping { UseStd3AsciiRules = true, AllowUnassigned = false };
        string unicode;
        try
        {
            // IdnMapping leaves an all-ASCII input as given, so lowercase before decoding A-labels.
            var ascii = idn.GetAscii(name).ToLowerInvariant();
            unicode = idn.GetUnicode(ascii);
        }
        catch (ArgumentException)
        {
            error = "The domainpart is not a valid domain name.";
            return null;
        }

        // RFC 5893 applies the Bidi Rule to every label of a domain name that has a right-to-left label.
        var labels = unicode.Split('.');
        var decoded = labels.Select(l => CodePoints.Decode(l)!).ToArray();
        if (decoded.Any(l => BidiRule.HasRightToLeft(l)))
        {
            foreach (var label in decoded)
            {
                if (BidiRule.Check(label) is { } bidiError)
                {
                    error = "The domainpart fails the Bidi Rule: " + bidiError;
                    return null;
                }
            }
        }
        if (CodePoints.Utf8Length(unicode) > Jid.MaxPartBytes)
        {
            error = "The domainpart is longer than 1023 octets.";
            return null;
        }
        return unicode;
    }

    // RFC 7622 §3.2: an IPv6 literal in brackets (RFC 3986 §3.2.2); written canonically so equal addresses compare equal.
    private static string? PrepareIPv6(string name, out string? error)
    {
        error = null;
        var inner = name.AsSpan(1, name.Length - 1);
        if (inner.Length > 1 && inner[^1] == ']')
        {
            inner = inner[..^1];
            var plain = true;
            foreach (var c in inner)
                plain &= char.IsAsciiHexDigit(c) || c is ':' or '.';
            if (plain && IPAddress.TryParse(inner, out var address) && address.AddressFamily == AddressFamily.InterNetworkV6)
                return "[" + address + "]";
        }
        error = "The domainpart is not a valid IPv6 literal.";
        return null;
    }

    // True for a name that is already canonical: lowercase LDH labels of 1..63 octets with no hyphen at either end
    // and no "--" in the third and fourth positions (reserved for A-labels), at most 253 octets, no trailing dot.
    private static bool IsCanonicalAscii(ReadOnlySpan<char> s)
    {
        if (s.Length == 0 || s.Length > MaxName)
            return false;
        var labelStart = 0;
        for (var i = 0; i <= s.Length; i++)
        {
            if (i == s.Length || s[i] == '.')
            {
                var length = i - labelStart;
                if (length == 0 || length > MaxLabel || s[i - 1] == '-')
                    return false;
                labelStart = i + 1;
                continue;
            }
            var c = s[i];
            if (c is (>= 'a' and <= 'z') or (>= '0' and <= '9'))
                continue;
            if (c != '-' || i == labelStart)
                return false;
            if (i - labelStart == 2 && i + 1 < s.Length && s[i + 1] == '-')
                return false;
        }
        return true;
    }
}
