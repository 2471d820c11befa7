using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Protocol.Sasl;

/// <summary>Computes channel-binding data for the SCRAM -PLUS mechanisms.</summary>
public static class ChannelBinding
{
    /// <summary>The channel-binding type name this server supports, as used in the gs2 header and in XEP-0440.</summary>
    public const string TlsServerEndPointName = "tls-server-end-point";

    /// <summary>Returns the RFC 5929 §4.1 tls-server-end-point data: the hash of the server certificate's DER encoding, using the certificate signature's hash with MD5 and SHA-1 raised to SHA-256.</summary>
    /// <exception cref="NotSupportedException">The signature algorithm has no single hash (for example Ed25519), so RFC 5929 defines no binding.</exception>
    public static byte[] TlsServerEndPoint(X509Certificate2 cert) =>
        TryTlsServerEndPoint(cert, out var data)
            ? data
            : throw new NotSupportedException($"No tls-server-end-point hash is defined for signature algorithm {cert.SignatureAlgorithm.Value}.");

    /// <summary>Computes the tls-server-end-point data, returning false when the signature algorithm defines none, in which case -PLUS must not be offered.</summary>
    public static bool TryTlsServerEndPoint(X509Certificate2 cert, out byte[] data)
    {
        ArgumentNullException.ThrowIfNull(cert);
        data = [];
        var raw = cert.RawData;
        switch (SignatureHash(cert.SignatureAlgorithm.Value, raw))
        {
            case "SHA256": data = SHA256.HashData(raw); return true;
            case "SHA384": data = SHA384.HashData(raw); return true;
            case "SHA512": data = SHA512.HashData(raw); return true;
            default: return false;
        }
    }

    private static string? SignatureHash(string? oid, byte[] rawCertificate) => oid switch
    {
        // RFC 5929 §4.1: MD5 and SHA-1 are replaced by SHA-256.
        "1.2.840.113549.1.1.4" or "1.2.840.113549.1.1.5" or "1.3.14.3.2.29" => "SHA256", // md5/sha1 with RSA
        "1.2.840.10045.4.1" or "1.2.840.10040.4.3" => "SHA256", // ecdsa-with-SHA1, dsa-with-sha1
        "1.2.840.113549.1.1.11" or "1.2.840.10045.4.3.2" or "2.16.840.1.101.3.4.3.2" => "SHA256",
        "1.2.840.113549.1.1.12" or "1.2.840.10045.4.3.3" => "SHA384",
        "1.2.840.113549.1.1.13" or "1.2.840.10045.4.3.4" => "SHA512",
        "1.2.840.113549.1.1.10" => PssHash(rawCertificate),
        _ => null,
    };

    // RSASSA-PSS names its hash in the AlgorithmIdentifier parameters (RFC 4055 §3.1); absent means SHA-1.
    private static string? PssHash(byte[] rawCertificate)
    {
        try
        {
            var certificate = new AsnReader(rawCertificate, AsnEncodingRules.DER).ReadSequence();
            certificate.ReadEncodedValue(); // tbsCertificate
            var algorithm = certificate.ReadSequence();
            algorithm.ReadObjectIdentifier();
            if (!algorithm.HasData)
                return "SHA256";
            var parameters = algorithm.ReadSequence();
            var hashTag = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
            if (!parameters.HasData || !parameters.PeekTag().HasSameClassAndValue(hashTag))
                return "SHA256";
            var hashAlgorithm = parameters.ReadSequence(hashTag).ReadSequence();
            return hashAlgorithm.ReadObjectIdentifier() switch
            {
                "1.3.14.3.2.26" => "SHA256", // SHA-1
                "2.16.840.1.101.3.4.2.1" => "SHA256",
                "2.16.840.1.101.3.4.2.2" => "SHA384",
                "2.16.840.1.101.3.4.2.3" => "SHA512",
                _ => null,
            };
        }
        catch (AsnContentException)
        {
            return null;
        }
    }
}
