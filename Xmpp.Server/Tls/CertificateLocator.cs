namespace Xmpp.Server.Tls;

/// Finds the files that hold a domain's certificate; see CertificateManager for the layouts.
internal static class CertificateLocator
{
    public const string FullChain = "fullchain.pem";
    public const string PrivateKey = "privkey.pem";

    /// The first per-domain layout whose certificate file exists, even when its key is missing,
    /// so that a half-installed certificate is reported rather than silently replaced.
    public static CertificateSource? FindForDomain(string certDirectory, string domain)
    {
        foreach (var name in FileNames(domain))
        {
            // File.Exists and the reads that follow resolve symlinks, which certbot's live/ layout uses.
            var dir = Path.Combine(certDirectory, name);
            var fullchain = Path.Combine(dir, FullChain);
            if (File.Exists(fullchain))
                return new CertificateSource(CertificateLayout.DomainDirectory, fullchain, Path.Combine(dir, PrivateKey));

            var pem = Path.Combine(certDirectory, name + ".pem");
            var key = Path.Combine(certDirectory, name + ".key");
            if (File.Exists(pem))
            {
                var keyPath = !File.Exists(key) && ContainsPrivateKey(pem) ? pem : key;
                return new CertificateSource(CertificateLayout.PemWithKey, pem, keyPath);
            }

            var crt = Path.Combine(certDirectory, name + ".crt");
            if (File.Exists(crt))
                return new CertificateSource(CertificateLayout.CrtWithKey, crt, key);

            var pfx = Path.Combine(certDirectory, name + ".pfx");
            if (File.Exists(pfx))
                return new CertificateSource(CertificateLayout.Pfx, pfx, null);
        }
        return null;
    }

    public static CertificateSource? FindShared(string certDirectory)
    {
        var fullchain = Path.Combine(certDirectory, FullChain);
        return File.Exists(fullchain)
            ? new CertificateSource(CertificateLayout.Shared, fullchain, Path.Combine(certDirectory, PrivateKey))
            : null;
    }

    public static string DescribeSearch(string certDirectory, string domain) =>
        $"looked in {certDirectory} for {domain}/{FullChain} + {domain}/{PrivateKey}, {domain}.pem + {domain}.key, " +
        $"{domain}.crt + {domain}.key, {domain}.pfx, and a {FullChain} + {PrivateKey} covering {domain}";

    /// Certbot and most ACME clients name directories by the A-label, people sometimes by the U-label.
    private static IEnumerable<string> FileNames(string asciiDomain)
    {
        yield return asciiDomain;
        var unicode = DnsNames.ToUnicode(asciiDomain);
        if (unicode != asciiDomain) yield return unicode;
    }

    private static bool ContainsPrivateKey(string path)
    {
        try
        {
            return File.ReadAllText(path).Contains("PRIVATE KEY-----", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
