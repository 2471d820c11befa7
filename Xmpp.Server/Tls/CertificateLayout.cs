namespace Xmpp.Server.Tls;

/// The file arrangements CertificateManager recognises, in the order it looks for them.
internal enum CertificateLayout
{
    /// D/fullchain.pem + D/privkey.pem, as certbot's live directory.
    DomainDirectory,
    /// D.pem + D.key, or D.pem holding both the chain and the key.
    PemWithKey,
    /// D.crt + D.key.
    CrtWithKey,
    /// D.pfx (PKCS#12).
    Pfx,
    /// fullchain.pem + privkey.pem at the top of the directory, used for every domain it covers.
    Shared,
}
