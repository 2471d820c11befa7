using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// A certificate with a usable private key, the intermediates to send with it, and its TLS context.
internal sealed class LoadedCertificate : IDisposable
{
    private readonly Lazy<SslStreamCertificateContext> _context;

    public LoadedCertificate(X509Certificate2 certificate, X509Certificate2Collection chain, CertificateSource source)
    {
        Certificate = certificate;
        Chain = chain;
        Source = source;
        Names = DnsNames.Of(certificate);
        // offline: the chain comes from the file, so building it must not fetch intermediates (AIA)
        // or OCSP responses over the network during start-up or a handshake.
        _context = new Lazy<SslStreamCertificateContext>(
            () => SslStreamCertificateContext.Create(Certificate, Chain, offline: true),
            LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public X509Certificate2 Certificate { get; }
    public X509Certificate2Collection Chain { get; }
    public CertificateSource Source { get; }
    public IReadOnlyList<string> Names { get; }

    /// Whether this certificate's connections share OpenSSL contexts restricted to our suites (SharedTlsContexts).
    public bool SharedTlsContext { get; set; }

    public bool IsSelfSigned => Certificate.SubjectName.RawData.AsSpan().SequenceEqual(Certificate.IssuerName.RawData);

    /// Built once per certificate: creating a context builds the chain, which is too slow per handshake.
    public SslStreamCertificateContext Context => _context.Value;

    public bool Covers(string asciiHost) => DnsNames.Covers(Names, asciiHost);

    public void Dispose()
    {
        Certificate.Dispose();
        foreach (var c in Chain) c.Dispose();
    }
}
