using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.Tls;

/// <summary>
/// Loads, generates, selects by SNI and checks the TLS certificates of the served domains.
/// </summary>
/// <remarks>
/// For each served domain D, the certificate directory is searched in this order and the first certificate file found is used:
/// <list type="number">
/// <item><c>D/fullchain.pem</c> + <c>D/privkey.pem</c>: certbot's layout. <c>D</c> may be a symlink to
/// <c>/etc/letsencrypt/live/D</c>, and the files symlinks into <c>archive/</c>, as certbot makes them.</item>
/// <item><c>D.pem</c> + <c>D.key</c>, or <c>D.pem</c> alone holding both the certificates and the key.</item>
/// <item><c>D.crt</c> + <c>D.key</c>.</item>
/// <item><c>D.pfx</c>: PKCS#12 with no password, or with the password in the environment variable <c>XMPP_CERT_PASSWORD</c>.</item>
/// <item><c>fullchain.pem</c> + <c>privkey.pem</c> at the top of the directory, for every domain its names cover
/// (a multi-domain or wildcard certificate).</item>
/// </list>
/// D is the domain in lower case; an internationalised domain may be spelt in its <c>xn--</c> form or in Unicode.
/// PEM certificate files hold the server certificate first, then its intermediates, which are sent in every handshake.
/// Keys are RSA or ECDSA, in PKCS#8 or the traditional OpenSSL form; an encrypted PKCS#8 key is opened with
/// <c>XMPP_CERT_PASSWORD</c>. A domain with no files of its own uses another domain's certificate that covers it
/// (<c>*.example.com</c> for <c>conference.example.com</c>). Failing that, unless disabled, a self-signed certificate is
/// generated into <c>D/fullchain.pem</c> + <c>D/privkey.pem</c> and a warning is logged; clients will have to accept it.
/// Certificate files that exist but cannot be used stop the start, so a broken renewal is not silently replaced.
/// While the server runs, <see cref="Reload"/> picks up changed files (CertificateReloadService calls it).
/// </remarks>
public sealed partial class CertificateManager : IDisposable
{
    public const string PasswordVariable = "XMPP_CERT_PASSWORD";

    private readonly string _certDirectory;
    private readonly string[] _domains;
    private readonly ILogger<CertificateManager> _logger;
    private readonly bool _generateSelfSigned;
    private readonly Lock _loadLock = new();
    private readonly List<LoadedCertificate> _owned = [];
    private readonly Dictionary<string, ServerOptionsSelectionCallback> _selectors = new(StringComparer.Ordinal);
    private volatile Snapshot? _current;
    private int _warnedAboutCallbackChains;
    private bool _disposed;

    public CertificateManager(string certDirectory, IReadOnlyList<string> domains, ILogger<CertificateManager> logger, bool generateSelfSigned = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(certDirectory);
        ArgumentNullException.ThrowIfNull(domains);
        _domains = domains.Select(DnsNames.Normalize).Where(d => d.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
        if (_domains.Length == 0) throw new ArgumentException("At least one domain is required.", nameof(domains));
        _certDirectory = Path.GetFullPath(certDirectory);
        _logger = logger;
        _generateSelfSigned = generateSelfSigned;
    }

    /// Password for .pfx files and encrypted PEM keys; defaults to the XMPP_CERT_PASSWORD environment variable.
    public string? Password { get; init; } = Environment.GetEnvironmentVariable(PasswordVariable);

    /// Loads (or generates) every domain's certificate. Safe to call again, for example after a renewal:
    /// later handshakes use the new certificates, handshakes already under way finish with the old ones.
    public void LoadAll()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_loadLock)
        {
            var loaded = new List<LoadedCertificate>();
            try
            {
                var snapshot = LoadSnapshot(loaded);
                // Before the snapshot is published, so no client reaches a shared context before its suites are set.
                foreach (var certificate in snapshot.Distinct)
                    certificate.SharedTlsContext = SharedTlsContexts.Prime(certificate.Context, alpn => NewOptions(alpn, sharedContext: true), _logger);
                _stamp = Stamp();
                _owned.AddRange(loaded);
                // Old certificates stay owned (not disposed) because an in-flight handshake may still use them.
                _current = snapshot;
            }
            catch
            {
                foreach (var c in loaded) c.Dispose();
                throw;
            }
        }
    }

    /// The certificate for an SNI name: the domain's own, else one whose names cover it (a wildcard),
    /// else the first domain's. The manager owns the returned certificate; do not dispose it.
    public X509Certificate2 GetCertificate(string? serverName) => Resolve(serverName).Certificate;

    /// <summary>TLS 1.2/1.3 server options choosing the certificate by SNI.</summary>
    /// <remarks>
    /// With a single certificate the options carry its <see cref="SslStreamCertificateContext"/>, so its intermediates are sent.
    /// With several, SslStream only offers a callback returning a bare certificate and then builds the chain itself, without our
    /// intermediates; <see cref="CreateServerOptionsSelector"/> has no such limit and should be preferred.
    /// The options capture the certificates loaded now; call again after <see cref="LoadAll"/>.
    /// </remarks>
    public SslServerAuthenticationOptions CreateServerOptions(string[]? alpn = null)
    {
        var snapshot = Current;
        var options = NewOptions(alpn, sharedContext: snapshot.Distinct.Length == 1 && snapshot.Default.SharedTlsContext);
        if (snapshot.Distinct.Length == 1)
        {
            options.ServerCertificateContext = snapshot.Default.Context;
        }
        else
        {
            if (snapshot.Distinct.Any(c => c.Chain.Count > 0) && Interlocked.Exchange(ref _warnedAboutCallbackChains, 1) == 0)
                _logger.LogWarning("Several TLS certificates with intermediate chains are loaded, but CreateServerOptions selects them through a callback that cannot send intermediates; use CreateServerOptionsSelector");
            options.ServerCertificateSelectionCallback = (_, name) => Resolve(name).Certificate;
        }
        return options;
    }

    /// <summary>A callback for <c>SslStream.AuthenticateAsServerAsync(ServerOptionsSelectionCallback, ...)</c> or Kestrel's
    /// <c>UseHttps(ServerOptionsSelectionCallback, ...)</c> that picks options per SNI name after the ClientHello arrives.</summary>
    /// <remarks>Each certificate's options carry its cached <see cref="SslStreamCertificateContext"/>, so intermediates are
    /// sent and no chain is built per handshake; certificates reloaded by <see cref="LoadAll"/> are picked up.
    /// The callback is cached per ALPN list, so calling this per connection is cheap.</remarks>
    public ServerOptionsSelectionCallback CreateServerOptionsSelector(string[]? alpn = null) => CreateServerOptionsSelector(alpn, null);

    /// <summary>As <see cref="CreateServerOptionsSelector(string[])"/>, and when <paramref name="clientCertificates"/> is given
    /// the peer is asked for a certificate (server-to-server links: XEP-0178), which the callback sees and which is
    /// judged after the handshake, so a peer without one still connects. Pass the same callback each time: the selector
    /// is cached per ALPN list and callback.</summary>
    public ServerOptionsSelectionCallback CreateServerOptionsSelector(string[]? alpn, RemoteCertificateValidationCallback? clientCertificates)
    {
        var key = (alpn is null ? "" : string.Join('\n', alpn)) + (clientCertificates is null ? "" : "\nclient:" + RuntimeHelpers.GetHashCode(clientCertificates));
        lock (_selectors)
        {
            if (_selectors.TryGetValue(key, out var cached)) return cached;
            // Keyed by certificate instance, so entries for certificates replaced by a reload go with them.
            var perCertificate = new ConditionalWeakTable<LoadedCertificate, SslServerAuthenticationOptions>();
            var protocols = alpn?.ToArray();
            ServerOptionsSelectionCallback selector = (_, hello, _, _) =>
            {
                var certificate = Resolve(hello.ServerName);
                var options = perCertificate.GetValue(certificate, c =>
                {
                    var o = NewOptions(protocols, c.SharedTlsContext);
                    o.ServerCertificateContext = c.Context;
                    if (clientCertificates is not null)
                    {
                        o.ClientCertificateRequired = true;
                        o.RemoteCertificateValidationCallback = clientCertificates;
                    }
                    return o;
                });
                return ValueTask.FromResult(options);
            };
            _selectors[key] = selector;
            return selector;
        }
    }

    /// Generates a self-signed certificate for the domain into &lt;dir&gt;/&lt;domain&gt;/fullchain.pem and privkey.pem
    /// (the key with mode 0600 on Unix) and returns it loaded; the caller owns the returned certificate.
    /// ECDSA P-256, SHA-256, valid from a day ago for 825 days, SAN dNSName D and *.D and xmppAddr D (RFC 6120 §13.7.1.4).
    public static X509Certificate2 GenerateSelfSigned(string domain, string certDirectory)
    {
        var source = SelfSignedCertificateFactory.Write(domain, certDirectory);
        var loaded = CertificateLoader.Load(source, password: null);
        foreach (var c in loaded.Chain) c.Dispose();
        return loaded.Certificate;
    }

    /// One line per problem with the certificate files, read fresh from disk: missing or unreadable files, keys missing
    /// or not matching, certificates expired or not yet valid or not covering the domain; lines starting "warning:"
    /// (expiry within 14 days, self-signed, missing intermediates) do not stop the server.
    public IReadOnlyList<string> Check()
    {
        var lines = new List<string>();
        var now = DateTimeOffset.UtcNow;
        if (!Directory.Exists(_certDirectory))
        {
            foreach (var domain in _domains)
                lines.Add($"{domain}: no certificate: the certificate directory {_certDirectory} does not exist{GenerationNote()}");
            return lines;
        }

        var own = _domains.ToDictionary(d => d, d => CertificateLocator.FindForDomain(_certDirectory, d), StringComparer.Ordinal);
        var shared = CertificateLocator.FindShared(_certDirectory);
        var sharedNames = shared is null ? [] : LeafNames(shared);
        foreach (var domain in _domains)
        {
            var source = own[domain];
            // An unreadable shared file names nothing; inspecting it reports why instead of "does not cover".
            if (source is null && shared is not null && (sharedNames.Count == 0 || DnsNames.Covers(sharedNames, domain))) source = shared;
            if (source is not null)
            {
                foreach (var problem in Inspect(source, domain, now)) lines.Add($"{domain}: {problem}");
                continue;
            }
            // LoadAll lends another domain's certificate when it covers this one (a wildcard).
            var lender = _domains.FirstOrDefault(d => own[d] is { } s && DnsNames.Covers(LeafNames(s), domain));
            if (lender is not null) continue;
            var sharedNote = shared is null ? "" : $"; {shared.CertificatePath} does not cover it";
            lines.Add($"{domain}: no certificate found ({CertificateLocator.DescribeSearch(_certDirectory, domain)}){sharedNote}{GenerationNote()}");
        }
        return lines;
    }

    public void Dispose()
    {
        lock (_loadLock)
        {
            if (_disposed) return;
            _disposed = true;
            _current = null;
            foreach (var c in _owned) c.Dispose();
            _owned.Clear();
        }
    }

    internal LoadedCertificate Resolve(string? serverName)
    {
        var snapshot = Current;
        if (string.IsNullOrEmpty(serverName)) return snapshot.Default;
        if (snapshot.ByDomain.TryGetValue(serverName, out var exact)) return exact;
        var host = DnsNames.Normalize(serverName);
        if (snapshot.ByDomain.TryGetValue(host, out exact)) return exact;
        foreach (var candidate in snapshot.Distinct)
            if (candidate.Covers(host)) return candidate;
        return snapshot.Default;
    }

    private Snapshot Current => _current ?? throw new InvalidOperationException(
        _disposed ? "The certificate manager has been disposed." : "Call LoadAll before using certificates.");

    /// sharedContext: the certificate's OpenSSL contexts are primed with our suites (SharedTlsContexts), so the options
    /// must carry no CipherSuitesPolicy, without which .NET would not share them.
    private static SslServerAuthenticationOptions NewOptions(string[]? alpn, bool sharedContext) => new()
    {
        // RFC 9325 §3.1.1: TLS 1.2 and 1.3 only.
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificateRequired = false,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        ApplicationProtocols = alpn is { Length: > 0 } ? alpn.Select(p => new SslApplicationProtocol(p)).ToList() : null,
        CipherSuitesPolicy = sharedContext ? null : CipherSuites,
    };

    /// RFC 9325 §4.2: AEAD suites with forward secrecy only, in our order of preference: AES-GCM (hardware-accelerated
    /// on almost every server and most phones), then ChaCha20-Poly1305 for phones without AES instructions. TLS 1.3's
    /// suites must be named too, or OpenSSL would offer none.
    internal static readonly TlsCipherSuite[] PreferredCipherSuites =
    [
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];

    // The policy is a Linux/macOS feature of .NET; elsewhere the platform's own (SChannel) defaults apply.
    private static readonly CipherSuitesPolicy? CipherSuites =
        OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() ? new CipherSuitesPolicy(PreferredCipherSuites) : null;

    private Snapshot LoadSnapshot(List<LoadedCertificate> loaded)
    {
        var now = DateTimeOffset.UtcNow;
        var byDomain = new Dictionary<string, LoadedCertificate>(StringComparer.Ordinal);
        var failures = new List<string>();
        var missing = new List<string>();
        LoadedCertificate? shared = null;
        bool sharedTried = false;

        foreach (var domain in _domains)
        {
            var source = CertificateLocator.FindForDomain(_certDirectory, domain);
            if (source is null)
            {
                if (!sharedTried)
                {
                    sharedTried = true;
                    if (CertificateLocator.FindShared(_certDirectory) is { } sharedSource)
                        shared = TryLoad(sharedSource, domain, loaded, failures);
                }
                if (shared is not null && shared.Covers(domain))
                {
                    byDomain[domain] = shared;
                    Report(shared, domain, now);
                }
                else
                {
                    missing.Add(domain);
                }
                continue;
            }
            if (TryLoad(source, domain, loaded, failures) is { } certificate)
            {
                byDomain[domain] = certificate;
                Report(certificate, domain, now);
            }
        }

        if (failures.Count > 0)
            throw new InvalidOperationException("TLS certificates could not be loaded:" + Environment.NewLine + string.Join(Environment.NewLine, failures));

        foreach (var domain in missing)
        {
            var lender = byDomain.Values.FirstOrDefault(c => c.Covers(domain));
            if (lender is not null)
            {
                byDomain[domain] = lender;
                _logger.LogInformation("{Domain}: no certificate of its own; using {Path}, which covers it", domain, lender.Source.CertificatePath);
            }
            else if (_generateSelfSigned)
            {
                var source = SelfSignedCertificateFactory.Write(domain, _certDirectory);
                var certificate = CertificateLoader.Load(source, password: null);
                loaded.Add(certificate);
                byDomain[domain] = certificate;
                _logger.LogWarning(
                    "{Domain}: no TLS certificate found, so a self-signed one was generated at {Path} (key {KeyPath}); clients will need to accept it. Install a real certificate (e.g. from Let's Encrypt) there to replace it",
                    domain, source.CertificatePath, source.KeyPath);
            }
            else
            {
                _logger.LogWarning("{Domain}: no TLS certificate found ({Search}); TLS connections for it will get another domain's certificate",
                    domain, CertificateLocator.DescribeSearch(_certDirectory, domain));
            }
        }

        if (byDomain.Count == 0)
            throw new InvalidOperationException(
                $"No TLS certificate for any served domain ({CertificateLocator.DescribeSearch(_certDirectory, _domains[0])}), and self-signed generation is disabled.");

        var first = _domains.First(byDomain.ContainsKey);
        return new Snapshot(byDomain, byDomain.Values.Distinct().ToArray(), byDomain[first]);
    }

    private LoadedCertificate? TryLoad(CertificateSource source, string domain, List<LoadedCertificate> loaded, List<string> failures)
    {
        try
        {
            var certificate = CertificateLoader.Load(source, Password);
            loaded.Add(certificate);
            _logger.LogInformation("{Domain}: loaded TLS certificate {Subject} from {Source}, valid until {NotAfter:u}",
                domain, certificate.Certificate.Subject, source.Describe(), certificate.Certificate.NotAfter.ToUniversalTime());
            return certificate;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or InvalidDataException)
        {
            var line = $"{domain}: cannot use {source.Describe()}: {e.Message}";
            _logger.LogError("{Line}", line);
            failures.Add(line);
            return null;
        }
    }

    private void Report(LoadedCertificate certificate, string domain, DateTimeOffset now)
    {
        foreach (var problem in CertificateInspector.Problems(certificate.Certificate, certificate.Chain, certificate.Source.CertificatePath, domain, now))
            _logger.LogWarning("{Domain}: {Problem}", domain, problem);
    }

    private List<string> Inspect(CertificateSource source, string domain, DateTimeOffset now)
    {
        var problems = new List<string>();
        X509Certificate2Collection all;
        try
        {
            all = source.KeyPath is null
                ? CertificateLoader.ReadPfx(source.CertificatePath, Password)
                : CertificateLoader.ReadPemCertificates(source.CertificatePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"cannot read {source.CertificatePath}: {e.Message}");
            return problems;
        }
        catch (Exception e) when (e is CryptographicException or InvalidDataException)
        {
            problems.Add($"cannot parse {source.CertificatePath}: {e.Message}");
            return problems;
        }

        try
        {
            X509Certificate2 leaf;
            if (source.KeyPath is null)
            {
                var withKey = all.FirstOrDefault(c => c.HasPrivateKey);
                if (withKey is null)
                {
                    problems.Add($"{source.CertificatePath} holds no certificate with a private key");
                    withKey = all[0];
                }
                leaf = withKey;
            }
            else
            {
                leaf = all[0];
                if (CertificateLoader.KeyProblem(leaf, source.KeyPath, Password) is { } keyProblem) problems.Add(keyProblem);
            }
            var chain = new X509Certificate2Collection(all.Where(c => !ReferenceEquals(c, leaf)).ToArray());
            problems.AddRange(CertificateInspector.Problems(leaf, chain, source.CertificatePath, domain, now));
        }
        finally
        {
            foreach (var c in all) c.Dispose();
        }
        return problems;
    }

    private IReadOnlyList<string> LeafNames(CertificateSource source)
    {
        try
        {
            var all = source.KeyPath is null
                ? CertificateLoader.ReadPfx(source.CertificatePath, Password)
                : CertificateLoader.ReadPemCertificates(source.CertificatePath);
            try
            {
                return DnsNames.Of(all.FirstOrDefault(c => c.HasPrivateKey) ?? all[0]);
            }
            finally
            {
                foreach (var c in all) c.Dispose();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or InvalidDataException)
        {
            return [];
        }
    }

    private string GenerationNote() => _generateSelfSigned ? "; a self-signed certificate will be generated at start" : "";

    private sealed record Snapshot(Dictionary<string, LoadedCertificate> ByDomain, LoadedCertificate[] Distinct, LoadedCertificate Default);
}
