namespace Xmpp.Server.Tls;

/// Where one certificate lives on disk; KeyPath is null for PKCS#12, which carries its own key.
internal sealed record CertificateSource(CertificateLayout Layout, string CertificatePath, string? KeyPath)
{
    public string Describe() => KeyPath is null || KeyPath == CertificatePath
        ? CertificatePath
        : $"{CertificatePath} + {KeyPath}";
}
