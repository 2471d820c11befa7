using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// The checks that need only the certificate: validity window, domain coverage, chain completeness.
internal static class CertificateInspector
{
    /// Certbot renews 30 days ahead; two weeks left means renewal has been failing for a while.
    public static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(14);

    public const string WarningPrefix = "warning: ";

    public static IEnumerable<string> Problems(X509Certificate2 leaf, X509Certificate2Collection chain, string where, string asciiDomain, DateTimeOffset now)
    {
        var notBefore = new DateTimeOffset(leaf.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        var notAfter = new DateTimeOffset(leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (notAfter <= now)
            yield return $"certificate {where} expired on {Format(notAfter)}";
        else if (notBefore > now)
            yield return $"certificate {where} is not valid until {Format(notBefore)}";
        else if (notAfter - now <= ExpiryWarning)
            yield return $"{WarningPrefix}certificate {where} expires in {(int)Math.Ceiling((notAfter - now).TotalDays)} day(s), on {Format(notAfter)}; renew it";

        var names = DnsNames.Of(leaf);
        if (!DnsNames.Covers(names, asciiDomain))
            yield return $"certificate {where} does not cover {asciiDomain} (it names {(names.Count == 0 ? "no DNS names" : string.Join(", ", names))})";

        bool selfSigned = leaf.SubjectName.RawData.AsSpan().SequenceEqual(leaf.IssuerName.RawData);
        if (selfSigned)
        {
            yield return $"{WarningPrefix}certificate {where} is self-signed; clients will need to accept it";
        }
        else if (!HasIssuer(leaf, chain))
        {
            // A frequent mistake is installing cert.pem instead of fullchain.pem: browsers fetch the missing
            // intermediate themselves, most XMPP clients do not and fail verification.
            yield return $"{WarningPrefix}certificate {where} comes without its intermediate ({leaf.Issuer}); use the full chain file";
        }
    }

    private static bool HasIssuer(X509Certificate2 leaf, X509Certificate2Collection chain)
    {
        foreach (var c in chain)
            if (c.SubjectName.RawData.AsSpan().SequenceEqual(leaf.IssuerName.RawData)) return true;
        return false;
    }

    private static string Format(DateTimeOffset t) => t.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
}
