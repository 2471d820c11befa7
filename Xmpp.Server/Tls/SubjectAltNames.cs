using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace Xmpp.Server.Tls;

/// Builds the subjectAltName extension (RFC 5280 §4.2.1.6) for the server's own certificates.
internal static class SubjectAltNames
{
    public const string ExtensionOid = "2.5.29.17";

    /// id-on-xmppAddr (RFC 6120 §13.7.1.4).
    public const string XmppAddrOid = "1.3.6.1.5.5.7.8.5";

    /// SubjectAlternativeNameBuilder cannot write otherName, hence the hand-written DER:
    /// GeneralNames ::= SEQUENCE OF GeneralName, with
    ///   dNSName   [2] IMPLICIT IA5String,
    ///   otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }.
    public static X509Extension Build(IEnumerable<string> dnsNames, IEnumerable<string> xmppAddrs)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (var dns in dnsNames)
                writer.WriteCharacterString(UniversalTagNumber.IA5String, dns, new Asn1Tag(TagClass.ContextSpecific, 2));

            foreach (var jid in xmppAddrs)
            {
                using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    writer.WriteObjectIdentifier(XmppAddrOid);
                    // The explicit [0] wrapper is a constructed tag around the complete inner value.
                    using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                    {
                        // RFC 6120 §13.7.1.4: the JID as a UTF8String, domain in U-label form.
                        writer.WriteCharacterString(UniversalTagNumber.UTF8String, jid);
                    }
                }
            }
        }
        // RFC 5280 §4.2.1.6: non-critical, because the subject DN (CN) is not empty.
        return new X509Extension(ExtensionOid, writer.Encode(), critical: false);
    }
}
