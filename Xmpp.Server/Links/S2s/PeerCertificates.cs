using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Server.Tls;

namespace Xmpp.Server.Links.S2s;

/// Decides whether a peer server's certificate proves its domain (RFC 6120 §13.7.2, RFC 6125, XEP-0178): the chain
/// ends at a trusted root (the system store, or the configured CA file), and one of its identities names the domain.
internal sealed class PeerCertificates
{
    private const string SrvNameOid = "1.3.6.1.5.5.7.8.7"; // id-on-dnsSRV (RFC 4985)
    private readonly X509Certificate2Collection? _roots;

    public PeerCertificates(S2sOptions options)
    {
        if (options.TrustedCaFile.Length > 0)
        {
            _roots = [];
            _roots.ImportFromPemFile(options.TrustedCaFile);
        }
    }

    /// null when the certificate proves the domain; otherwise why not, in words a self-hoster can act on.
    public string? Problem(X509Certificate2? certificate, X509Certificate2Collection? intermediates, string domain)
    {
        if (certificate is null) return "no certificate was presented";
        var now = DateTime.Now;
        if (now < certificate.NotBefore) return $"the certificate is not valid before {certificate.NotBefore.ToUniversalTime():u}";
        if (now > certificate.NotAfter) return $"the certificate expired on {certificate.NotAfter.ToUniversalTime():u}";
        var ascii = DnsNames.Normalize(domain);
        if (!Names(certificate, ascii))
            return $"the certificate ({certificate.Subject}, names: {string.Join(", ", Describe(certificate))}) does not name {ascii}";
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // An offline check: a handshake must not wait for AIA fetches of missing intermediates.
        chain.ChainPolicy.DisableCertificateDownloads = true;
        if (intermediates is not null) chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        if (_roots is not null)
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        }
        if (chain.Build(certificate)) return null;
        var status = chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct();
        bool selfSigned = certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);
        return (selfSigned ? "the certificate is self-signed" : $"the certificate's chain (issuer {certificate.Issuer}) does not lead to a trusted root")
               + $" ({string.Join("; ", status)})";
    }

    /// RFC 6125 §6.4: a DNS-ID (wildcard only as the whole left-most label), an SRV-ID for _xmpp-server or
    /// _xmpps-server, or an XmppAddr (RFC 6120 §13.7.1.4) equal to the domain; the CN only when there is no SAN.
    public static bool Names(X509Certificate2 certificate, string asciiDomain)
    {
        var ids = Identities.Of(certificate);
        foreach (var dns in ids.Dns)
            if (DnsNames.Matches(dns, asciiDomain)) return true;
        foreach (var srv in ids.Srv)
        {
            // RFC 4985 §2: _Service.Name; the service is ours, the name compared like a DNS-ID without wildcards.
            var dot = srv.IndexOf('.');
            if (dot > 0 && srv[..dot] is "_xmpp-server" or "_xmpps-server" && DnsNames.Normalize(srv[(dot + 1)..]) == asciiDomain)
                return true;
        }
        foreach (var addr in ids.XmppAddr)
            if (DnsNames.Normalize(addr) == asciiDomain) return true;
        if (ids.Dns.Count == 0 && ids.Srv.Count == 0 && ids.XmppAddr.Count == 0)
        {
            var cn = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
            return !string.IsNullOrEmpty(cn) && DnsNames.Matches(DnsNames.Normalize(cn), asciiDomain);
        }
        return false;
    }

    private static IEnumerable<string> Describe(X509Certificate2 certificate)
    {
        var ids = Identities.Of(certificate);
        return ids.Dns.Select(d => "DNS:" + d).Concat(ids.Srv.Select(s => "SRV:" + s)).Concat(ids.XmppAddr.Select(x => "xmppAddr:" + x))
            .DefaultIfEmpty("CN=" + certificate.GetNameInfo(X509NameType.SimpleName, false));
    }

    internal sealed record Identities(List<string> Dns, List<string> Srv, List<string> XmppAddr)
    {
        /// Reads subjectAltName by hand: .NET enumerates dNSName but not the otherName forms XMPP uses.
        public static Identities Of(X509Certificate2 certificate)
        {
            var result = new Identities([], [], []);
            foreach (var extension in certificate.Extensions)
            {
                if (extension.Oid?.Value != SubjectAltNames.ExtensionOid) continue;
                try { Read(extension.RawData, result); }
                catch (Exception ex) when (ex is AsnContentException or CryptographicException)
                {
                    // A malformed SAN names nothing.
                }
            }
            return result;
        }

        private static void Read(byte[] der, Identities into)
        {
            var names = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            while (names.HasData)
            {
                var tag = names.PeekTag();
                if (tag.HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 2)))
                {
                    into.Dns.Add(DnsNames.Normalize(names.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                }
                else if (tag.HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
                {
                    var other = names.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
                    var type = other.ReadObjectIdentifier();
                    var value = other.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
                    switch (type)
                    {
                        case SubjectAltNames.XmppAddrOid:
                            into.XmppAddr.Add(value.ReadCharacterString(UniversalTagNumber.UTF8String));
                            break;
                        case SrvNameOid:
                            into.Srv.Add(value.ReadCharacterString(UniversalTagNumber.IA5String));
                            break;
                    }
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }
        }
    }
}
