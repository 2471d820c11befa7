using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// Host name normalisation and RFC 6125 matching for certificate selection and checks.
internal static class DnsNames
{
    private const string SubjectAltNameOid = "2.5.29.17";
    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = false };

    /// Lower-case A-label form without a trailing dot: what SNI carries (RFC 6066 §3) and what
    /// dNSName entries hold (RFC 6120 §13.7.1.2), so configured U-label domains compare equal.
    public static string Normalize(string name)
    {
        var trimmed = name.Trim().TrimEnd('.');
        if (trimmed.Length == 0) return trimmed;
        try
        {
            return Idn.GetAscii(trimmed).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            return trimmed.ToLowerInvariant();
        }
    }

    /// Human-readable form for log lines and xmppAddr values.
    public static string ToUnicode(string asciiName)
    {
        try
        {
            return Idn.GetUnicode(asciiName);
        }
        catch (ArgumentException)
        {
            return asciiName;
        }
    }

    /// RFC 6125 §6.4.3: a wildcard is only a whole left-most label and matches exactly one label,
    /// so *.example.com covers conference.example.com but neither example.com nor a.b.example.com.
    public static bool Matches(string pattern, string host)
    {
        if (pattern.StartsWith("*.", StringComparison.Ordinal))
        {
            int dot = host.IndexOf('.');
            return dot > 0 && string.Equals(host[(dot + 1)..], pattern[2..], StringComparison.Ordinal);
        }
        return string.Equals(pattern, host, StringComparison.Ordinal);
    }

    /// The DNS identities a certificate presents: its SAN dNSNames, or its CN only when it has none
    /// (RFC 6125 §6.4.4 forbids the CN fallback once a SAN dNSName exists).
    public static IReadOnlyList<string> Of(X509Certificate2 certificate)
    {
        var names = new List<string>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAltNameOid) continue;
            try
            {
                var san = extension as X509SubjectAlternativeNameExtension
                          ?? new X509SubjectAlternativeNameExtension(extension.RawData, extension.Critical);
                foreach (var dns in san.EnumerateDnsNames()) names.Add(Normalize(dns));
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                // A malformed SAN presents no usable names; Check reports the certificate as not covering.
            }
        }
        if (names.Count == 0)
        {
            var cn = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
            if (!string.IsNullOrEmpty(cn)) names.Add(Normalize(cn));
        }
        return names;
    }

    public static bool Covers(IReadOnlyList<string> certificateNames, string asciiHost)
    {
        foreach (var pattern in certificateNames)
            if (Matches(pattern, asciiHost)) return true;
        return false;
    }
}
