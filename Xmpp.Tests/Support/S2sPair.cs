using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Server.Links.S2s;

namespace Xmpp.Tests.Support;

/// How the two test servers prove their domains to each other.
public enum S2sCertificates
{
    /// Both certificates come from a CA made for the test, which both servers trust: SASL EXTERNAL (XEP-0178).
    FromTestCa,

    /// Both servers generate self-signed certificates nobody trusts: dialback over TLS (XEP-0220).
    SelfSigned,
}

/// Two of our servers in one process, a.test and b.test, federating over loopback through the static peer map.
public sealed class S2sPair : IAsyncDisposable
{
    private readonly string _root;

    private S2sPair(string root, TestServer a, TestServer b)
    {
        _root = root;
        A = a;
        B = b;
    }

    public TestServer A { get; }
    public TestServer B { get; }

    /// services: per domain, extra services for that server (a LogCapture, for instance).
    public static async Task<S2sPair> StartAsync(S2sCertificates certificates, Action<string, Dictionary<string, string?>>? configure = null,
        Action<string, Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "xmpp-s2s-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        int portA = TestServer.FreePort(), portB = TestServer.FreePort();
        string? caFile = null;
        if (certificates == S2sCertificates.FromTestCa)
        {
            using var ca = TestCa.Create();
            caFile = Path.Combine(root, "ca.pem");
            File.WriteAllText(caFile, ca.Certificate.ExportCertificatePem());
            ca.Issue("a.test", Path.Combine(root, "certs-a"));
            ca.Issue("b.test", Path.Combine(root, "certs-b"));
        }
        void Configure(string domain, string certDir, int port, string peer, int peerPort, Dictionary<string, string?> o)
        {
            o["Xmpp:Domains:0"] = domain;
            o["Xmpp:CertDir"] = certDir;
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Port"] = port.ToString();
            o["Xmpp:S2s:Peers:" + peer] = "127.0.0.1:" + peerPort;
            o["Xmpp:S2s:ConnectTimeoutSeconds"] = "3";
            if (caFile is not null) o["Xmpp:S2s:TrustedCaFile"] = caFile;
            configure?.Invoke(domain, o);
        }
        var a = await TestServer.StartAsync(Path.Combine(root, "a"),
            o => Configure("a.test", Path.Combine(root, "certs-a"), portA, "b.test", portB, o), sc => services?.Invoke("a.test", sc));
        TestServer? b = null;
        try
        {
            b = await TestServer.StartAsync(Path.Combine(root, "b"),
                o => Configure("b.test", Path.Combine(root, "certs-b"), portB, "a.test", portA, o), sc => services?.Invoke("b.test", sc));
        }
        finally
        {
            if (b is null) await a.DisposeAsync();
        }
        return new S2sPair(root, a, b);
    }

    public static int S2sPort(TestServer server) => server.Options.S2s.Port;

    public static IReadOnlyList<S2sLinkInfo> Links(TestServer server) => server.Get<S2sLinkManager>().Links;

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// A certificate authority made for one test run (RFC 5280 profile, ECDSA P-256), issuing server certificates with
/// the dNSName and xmppAddr identities RFC 6120 §13.7.1 asks for.
public sealed class TestCa : IDisposable
{
    private readonly ECDsa _key;

    private TestCa(ECDsa key, X509Certificate2 certificate)
    {
        _key = key;
        Certificate = certificate;
    }

    public X509Certificate2 Certificate { get; }

    public static TestCa Create()
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=xmppd test CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        return new TestCa(key, request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30)));
    }

    /// Writes DIR/DOMAIN/fullchain.pem and privkey.pem, the layout the server looks for first.
    public void Issue(string domain, string certDir, IEnumerable<string>? dnsNames = null, IEnumerable<string>? xmppAddrs = null,
        DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + domain, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            new OidCollection { new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2") }, critical: false));
        request.CertificateExtensions.Add(SanBuilder.Build(dnsNames ?? [domain, "*." + domain], xmppAddrs ?? [domain], []));
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using var issued = request.Create(Certificate, now.AddDays(-1), notAfter ?? now.AddDays(20), serial);
        var dir = Path.Combine(certDir, domain);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "fullchain.pem"), issued.ExportCertificatePem() + "\n");
        File.WriteAllText(Path.Combine(dir, "privkey.pem"), key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    /// A certificate with the CA's key, for tests that judge certificates directly.
    public X509Certificate2 IssueInMemory(string subject, IEnumerable<string> dnsNames, IEnumerable<string> xmppAddrs, IEnumerable<string> srvNames)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        var ids = SanBuilder.Build(dnsNames, xmppAddrs, srvNames);
        if (ids.RawData.Length > 2) request.CertificateExtensions.Add(ids);
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        return request.Create(Certificate, now.AddDays(-1), now.AddDays(20), serial);
    }

    public void Dispose()
    {
        Certificate.Dispose();
        _key.Dispose();
    }
}

/// subjectAltName with dNSName, xmppAddr and SRVName (RFC 4985) entries, written as DER by hand: .NET's builder
/// cannot write otherName.
internal static class SanBuilder
{
    public static X509Extension Build(IEnumerable<string> dns, IEnumerable<string> xmppAddrs, IEnumerable<string> srvNames)
    {
        var writer = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (var d in dns)
                writer.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, d, new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 2));
            void Other(string oid, System.Formats.Asn1.UniversalTagNumber type, string value)
            {
                using (writer.PushSequence(new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    writer.WriteObjectIdentifier(oid);
                    using (writer.PushSequence(new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 0, isConstructed: true)))
                        writer.WriteCharacterString(type, value);
                }
            }
            foreach (var x in xmppAddrs) Other("1.3.6.1.5.5.7.8.5", System.Formats.Asn1.UniversalTagNumber.UTF8String, x);
            foreach (var s in srvNames) Other("1.3.6.1.5.5.7.8.7", System.Formats.Asn1.UniversalTagNumber.IA5String, s);
        }
        return new X509Extension("2.5.29.17", writer.Encode(), critical: false);
    }
}
