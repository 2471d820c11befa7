using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.Tls;

/// Replacing certificates while the server runs: certbot's renewals, files copied in by hand, the ACME client.
public sealed partial class CertificateManager
{
    private string? _stamp;

    /// <summary>Reads the certificate files again when they changed since the last load (or always, with
    /// <paramref name="force"/>) and swaps in the new certificates: handshakes that start afterwards get them,
    /// connections already up keep theirs. Returns the domains whose certificate changed.</summary>
    /// <remarks>Unlike at start, a file that cannot be used stops nothing: that domain keeps the certificate it had and
    /// the reason is logged (a key that does not match, a certificate expired or not yet valid, or one that no longer
    /// covers the domain). Removed files also leave the old certificate in place; no self-signed one is generated.</remarks>
    public IReadOnlyList<string> Reload(bool force = false)
    {
        lock (_loadLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var old = Current;
            var stamp = Stamp();
            if (!force && stamp == _stamp) return [];
            _stamp = stamp;

            var now = DateTimeOffset.UtcNow;
            var byDomain = new Dictionary<string, LoadedCertificate>(old.ByDomain, StringComparer.Ordinal);
            var fresh = new Dictionary<string, LoadedCertificate?>(StringComparer.Ordinal);
            var changed = new List<string>();
            var shared = CertificateLocator.FindShared(_certDirectory);
            foreach (var domain in _domains)
            {
                old.ByDomain.TryGetValue(domain, out var current);
                var source = CertificateLocator.FindForDomain(_certDirectory, domain);
                if (source is null && shared is not null) source = shared;
                if (source is null) continue;
                var candidate = LoadForReload(source, domain, now, fresh);
                if (candidate is null) continue;
                if (!candidate.Covers(domain) && (current is null || current.Covers(domain)))
                {
                    // A shared file that does not name this domain is not meant for it; a per-domain one is a mistake.
                    if (source.Layout != CertificateLayout.Shared)
                        _logger.LogError("{Domain}: not using {Source}: it does not cover {Domain} (names: {Names}); keeping the certificate loaded before",
                            domain, source.Describe(), domain, string.Join(", ", candidate.Names));
                    continue;
                }
                if (current is not null && Fingerprint(current) == Fingerprint(candidate)) continue;
                byDomain[domain] = candidate;
                changed.Add(domain);
            }

            var used = byDomain.Values.ToHashSet();
            foreach (var c in fresh.Values)
                if (c is not null && !used.Contains(c)) c.Dispose();
            if (changed.Count == 0) return [];

            // The old certificates stay owned (not disposed): a handshake under way, or a connection's channel binding
            // (tls-server-end-point reads the local certificate), may still use them. One per renewal is little.
            _owned.AddRange(fresh.Values.OfType<LoadedCertificate>().Where(used.Contains));
            var first = _domains.First(byDomain.ContainsKey);
            _current = new Snapshot(byDomain, byDomain.Values.Distinct().ToArray(), byDomain[first]);
            foreach (var domain in changed)
            {
                var c = byDomain[domain].Certificate;
                _logger.LogInformation("{Domain}: TLS certificate replaced without a restart by {Subject} (serial {Serial}, issuer {Issuer}, valid until {NotAfter:u}) from {Source}; new connections use it",
                    domain, c.Subject, c.SerialNumber, c.Issuer, c.NotAfter.ToUniversalTime(), byDomain[domain].Source.Describe());
            }
            return changed;
        }
    }

    /// The certificate from a source, loaded once per reload however many domains share it; null (and logged) when it
    /// cannot be used.
    private LoadedCertificate? LoadForReload(CertificateSource source, string domain, DateTimeOffset now, Dictionary<string, LoadedCertificate?> fresh)
    {
        var key = source.Describe();
        if (fresh.TryGetValue(key, out var known)) return known;
        LoadedCertificate? loaded = null;
        try
        {
            loaded = CertificateLoader.Load(source, Password);
            var c = loaded.Certificate;
            if (c.NotAfter.ToUniversalTime() <= now.UtcDateTime)
                throw new InvalidDataException($"the certificate expired on {c.NotAfter.ToUniversalTime():u}");
            if (c.NotBefore.ToUniversalTime() > now.UtcDateTime)
                throw new InvalidDataException($"the certificate is not valid before {c.NotBefore.ToUniversalTime():u}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or InvalidDataException)
        {
            loaded?.Dispose();
            loaded = null;
            _logger.LogError("{Domain}: not using {Source}: {Reason}; keeping the certificate loaded before", domain, key, e.Message);
        }
        fresh[key] = loaded;
        return loaded;
    }

    private static string Fingerprint(LoadedCertificate c) =>
        c.Certificate.Thumbprint + string.Concat(c.Chain.Select(x => "," + x.Thumbprint));

    /// What the certificate files are now: which files each domain would use, where their symlinks lead (certbot's
    /// live/ names point into archive/ and are switched to new files on renewal), and their sizes and times. Cheap
    /// enough for a periodic re-scan: a few stat calls per domain, no file is read.
    private string Stamp()
    {
        var b = new StringBuilder();
        void Add(string? path)
        {
            if (path is null) return;
            b.Append(path).Append('>');
            try
            {
                // The link's text is enough to see a switch; the sizes and times are the file the path opens (stat
                // follows links), which also catches a file rewritten in place.
                b.Append(File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName).Append(' ');
                var info = new FileInfo(path);
                if (info.Exists) b.Append(info.Length).Append(' ').Append(info.LastWriteTimeUtc.Ticks).Append(' ').Append(info.CreationTimeUtc.Ticks);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                b.Append('?').Append(e.Message);
            }
            b.Append('\n');
        }
        foreach (var domain in _domains)
        {
            var source = CertificateLocator.FindForDomain(_certDirectory, domain);
            b.Append(domain).Append(':');
            Add(source?.CertificatePath);
            Add(source?.KeyPath);
        }
        var shared = CertificateLocator.FindShared(_certDirectory);
        Add(shared?.CertificatePath);
        Add(shared?.KeyPath);
        return b.ToString();
    }
}
