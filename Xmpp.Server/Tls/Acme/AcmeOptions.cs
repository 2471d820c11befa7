namespace Xmpp.Server.Tls.Acme;

/// Xmpp:Acme: certificates from an ACME certificate authority (RFC 8555), Let's Encrypt by default. Off unless enabled;
/// the domains need public DNS pointing at this machine and Http01Port reachable from the internet as port 80.
public sealed class AcmeOptions
{
    public const string LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory";
    public const string LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory";

    public bool Enabled { get; set; }

    /// The CA's directory URL; Let's Encrypt's staging directory (LetsEncryptStaging) is for trying the setup out.
    public string DirectoryUrl { get; set; } = LetsEncrypt;

    /// Where the CA sends expiry warnings and account notices (mailto: is added); may be empty.
    public string Email { get; set; } = "";

    /// The CA's terms of service must be agreed to before it issues anything (RFC 8555 §7.3 termsOfServiceAgreed).
    public bool AcceptTermsOfService { get; set; }

    /// How the CA checks control of the names: "http-01" (RFC 8555 §8.3, a plain-HTTP request to port 80, answered on
    /// Http01Port) or "tls-alpn-01" (RFC 8737, a TLS handshake to port 443, answered on the direct TLS ports C2sTlsPort
    /// and HttpPort, one of which must be reachable as 443).
    public string Challenge { get; set; } = Http01;

    public const string Http01 = "http-01";
    public const string TlsAlpn01 = "tls-alpn-01";

    public bool UsesHttp01 => Challenge == Http01;

    /// Plain-HTTP port answering http-01 challenges (RFC 8555 §8.3) under /.well-known/acme-challenge/; the CA always
    /// connects to port 80, so another port needs a forward from 80 (or a proxy passing that path through).
    public int Http01Port { get; set; } = 80;

    /// A certificate is renewed when it has less than this many days left (Let's Encrypt's last 90 days: 30).
    public double RenewDaysBeforeExpiry { get; set; } = 30;

    /// How often the certificates' expiry is checked.
    public int CheckIntervalSeconds { get; set; } = 12 * 3600;

    /// Service subdomains to leave out of the certificates (names without public DNS), e.g. [ "proxy" ].
    public List<string> ExcludeSubdomains { get; set; } = [];

    /// A PEM file with the root CA of a private ACME server (step-ca, Pebble) whose directory is served over HTTPS with a
    /// certificate the system does not trust; empty = the system's trust store.
    public string CaCertificateFile { get; set; } = "";

    public IEnumerable<string> Validate()
    {
        if (Challenge is not (Http01 or TlsAlpn01)) yield return $"Xmpp:Acme:Challenge: '{Challenge}' is not http-01 or tls-alpn-01.";
        if (!Enabled) yield break;
        if (!Uri.TryCreate(DirectoryUrl, UriKind.Absolute, out var uri) || uri.Scheme != "https")
            yield return $"Xmpp:Acme:DirectoryUrl: '{DirectoryUrl}' is not an https URL.";
        if (!AcceptTermsOfService)
            yield return "Xmpp:Acme:AcceptTermsOfService must be true to obtain certificates (read the CA's terms first).";
        if (Http01Port is < 1 or > 65535) yield return $"Xmpp:Acme:Http01Port: {Http01Port} is not a port number.";
        if (RenewDaysBeforeExpiry is <= 0 or > 365) yield return "Xmpp:Acme:RenewDaysBeforeExpiry must be between 0 and 365 days.";
        if (CheckIntervalSeconds < 1) yield return "Xmpp:Acme:CheckIntervalSeconds must be 1 or more.";
        if (Email.Length > 0 && (!Email.Contains('@') || Email.Contains(':')))
            yield return $"Xmpp:Acme:Email: '{Email}' is not an address such as admin@example.org.";
        if (CaCertificateFile.Length > 0 && !File.Exists(CaCertificateFile))
            yield return $"Xmpp:Acme:CaCertificateFile: {CaCertificateFile} does not exist.";
    }
}
