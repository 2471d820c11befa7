using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// Creates the certificate the server serves when an operator has not installed one.
internal static class SelfSignedCertificateFactory
{
    /// Apple platforms reject TLS server certificates valid for longer than 825 days.
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(825);

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// Writes D/fullchain.pem and D/privkey.pem (mode 0600) and returns the source describing them.
    /// ECDSA P-256: every XMPP client TLS stack in use (OpenSSL, GnuTLS, Apple, Android, .NET) accepts it,
    /// and it makes smaller handshakes than RSA.
    public static CertificateSource Write(string domain, string certDirectory)
    {
        var ascii = DnsNames.Normalize(domain);
        if (ascii.Length == 0) throw new ArgumentException("A domain is required.", nameof(domain));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(ascii);
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        // clientAuth as well, so the same certificate can authenticate this server to others over s2s (RFC 6120 §13.7.2).
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            new OidCollection { new Oid(ServerAuthOid), new Oid(ClientAuthOid) }, critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        // *.D covers the usual service subdomains (conference.D, upload.D) with one file.
        request.CertificateExtensions.Add(SubjectAltNames.Build([ascii, "*." + ascii], [DnsNames.ToUnicode(ascii)]));

        // Back-dated a day so a client whose clock runs slow still accepts it.
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        using var certificate = request.CreateSelfSigned(notBefore, notBefore + Lifetime);

        var dir = Path.Combine(certDirectory, ascii);
        Directory.CreateDirectory(dir);
        var keyPath = Path.Combine(dir, CertificateLocator.PrivateKey);
        var certPath = Path.Combine(dir, CertificateLocator.FullChain);
        // The key first: a crash between the two writes leaves no fullchain.pem, so the next start regenerates.
        WritePrivate(keyPath, key.ExportPkcs8PrivateKeyPem());
        WriteAtomically(certPath, certificate.ExportCertificatePem() + "\n", privateFile: false);
        return new CertificateSource(CertificateLayout.DomainDirectory, certPath, keyPath);
    }

    private static void WritePrivate(string path, string contents) => WriteAtomically(path, contents + "\n", privateFile: true);

    /// Written to a temporary file and renamed, so a reader never sees half a file; a private file is
    /// created with mode 0600 from the start rather than chmod-ed after the key is already on disk.
    private static void WriteAtomically(string path, string contents, bool privateFile)
    {
        var temp = path + ".tmp";
        File.Delete(temp);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (privateFile && !OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(contents);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        if (privateFile && !OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
