using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// Reads PEM and PKCS#12 files into LoadedCertificate; failures throw with a message naming the file.
internal static class CertificateLoader
{
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string EcOid = "1.2.840.10045.2.1";

    public static LoadedCertificate Load(CertificateSource source, string? password) =>
        source.KeyPath is null ? LoadPfx(source, password) : LoadPem(source, password);

    /// The certificates in a PEM file, leaf first (RFC 7468; certbot's fullchain.pem order).
    public static X509Certificate2Collection ReadPemCertificates(string path)
    {
        var all = new X509Certificate2Collection();
        all.ImportFromPemFile(path);
        if (all.Count == 0) throw new InvalidDataException($"{path} holds no PEM CERTIFICATE block");
        return all;
    }

    public static X509Certificate2Collection ReadPfx(string path, string? password)
    {
        try
        {
            return X509CertificateLoader.LoadPkcs12CollectionFromFile(path, password);
        }
        catch (CryptographicException) when (string.IsNullOrEmpty(password))
        {
            // "No password" is encoded as either an absent or an empty password depending on the tool
            // that wrote the file; the loader tries one form, so try the other before giving up.
            try
            {
                return X509CertificateLoader.LoadPkcs12CollectionFromFile(path, password is null ? "" : null);
            }
            catch (CryptographicException e)
            {
                throw new CryptographicException(
                    $"cannot open {path}: {e.Message} (wrong or missing password? set {CertificateManager.PasswordVariable})", e);
            }
        }
        catch (CryptographicException e)
        {
            throw new CryptographicException($"cannot open {path}: {e.Message} (is {CertificateManager.PasswordVariable} right?)", e);
        }
    }

    /// Why the key file cannot serve the certificate, or null when it can; compares public keys so
    /// the message can say "does not match" rather than the runtime's generic PEM error.
    public static string? KeyProblem(X509Certificate2 leaf, string keyPath, string? password)
    {
        string pem;
        try
        {
            pem = File.ReadAllText(keyPath);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return $"private key {keyPath} is missing";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot read private key {keyPath}: {e.Message}";
        }
        bool encrypted = IsEncrypted(pem);
        if (encrypted && string.IsNullOrEmpty(password))
            return $"private key {keyPath} is encrypted; set {CertificateManager.PasswordVariable}";
        try
        {
            switch (leaf.GetKeyAlgorithm())
            {
                case RsaOid:
                {
                    using var key = RSA.Create();
                    if (encrypted) key.ImportFromEncryptedPem(pem, password); else key.ImportFromPem(pem);
                    using var pub = leaf.GetRSAPublicKey()!;
                    var a = key.ExportParameters(false);
                    var b = pub.ExportParameters(false);
                    return a.Modulus.AsSpan().SequenceEqual(b.Modulus) && a.Exponent.AsSpan().SequenceEqual(b.Exponent)
                        ? null : $"private key {keyPath} does not match certificate {leaf.Subject}";
                }
                case EcOid:
                {
                    using var key = ECDsa.Create();
                    if (encrypted) key.ImportFromEncryptedPem(pem, password); else key.ImportFromPem(pem);
                    using var pub = leaf.GetECDsaPublicKey()!;
                    var a = key.ExportParameters(false);
                    var b = pub.ExportParameters(false);
                    return a.Q.X.AsSpan().SequenceEqual(b.Q.X) && a.Q.Y.AsSpan().SequenceEqual(b.Q.Y)
                        ? null : $"private key {keyPath} does not match certificate {leaf.Subject}";
                }
                default:
                    return $"certificate {leaf.Subject} uses key algorithm {leaf.GetKeyAlgorithm()}; only RSA and ECDSA are supported";
            }
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // ArgumentException: no private key PEM block, or an RSA key where an EC key was expected.
            return $"private key {keyPath} cannot be read as a key for this {(leaf.GetKeyAlgorithm() == RsaOid ? "RSA" : "ECDSA")} certificate: {e.Message}";
        }
    }

    private static LoadedCertificate LoadPem(CertificateSource source, string? password)
    {
        var all = ReadPemCertificates(source.CertificatePath);
        try
        {
            var keyPath = source.KeyPath!;
            if (KeyProblem(all[0], keyPath, password) is { } problem) throw new InvalidDataException(problem);

            using var withKey = IsEncrypted(File.ReadAllText(keyPath))
                ? X509Certificate2.CreateFromEncryptedPemFile(source.CertificatePath, password, keyPath)
                : X509Certificate2.CreateFromPemFile(source.CertificatePath, keyPath);

            // A key imported from PEM is an ephemeral key object. Windows' TLS stack (SChannel) cannot use
            // such keys at all ("No credentials are available"), and on every platform the certificate would
            // otherwise keep pointing at a key object we do not own. A round trip through an in-memory PKCS#12
            // gives a certificate whose key belongs to the platform's certificate loader, the same shape a
            // .pfx produces, so SslStream sees one kind of certificate whatever the file format was.
            var usable = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), password: null);

            var chain = new X509Certificate2Collection();
            for (int i = 1; i < all.Count; i++) chain.Add(all[i]);
            all[0].Dispose();
            return new LoadedCertificate(usable, chain, source);
        }
        catch
        {
            foreach (var c in all) c.Dispose();
            throw;
        }
    }

    private static LoadedCertificate LoadPfx(CertificateSource source, string? password)
    {
        var all = ReadPfx(source.CertificatePath, password);
        X509Certificate2? leaf = null;
        var chain = new X509Certificate2Collection();
        foreach (var c in all)
        {
            if (leaf is null && c.HasPrivateKey) leaf = c;
            else chain.Add(c);
        }
        if (leaf is null)
        {
            foreach (var c in all) c.Dispose();
            throw new InvalidDataException($"{source.CertificatePath} holds no certificate with a private key");
        }
        return new LoadedCertificate(leaf, chain, source);
    }

    private static bool IsEncrypted(string pem) => pem.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
}
