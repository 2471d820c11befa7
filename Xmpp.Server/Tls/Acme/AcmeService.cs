using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Tls.Acme;

/// Obtains and renews the certificates of the served domains from an ACME CA, as ejabberd's built-in client does: one
/// certificate per domain naming the domain and its service subdomains (conference., upload., proxy.), written to
/// CertDir/DOMAIN/fullchain.pem + privkey.pem and swapped in without a restart. A domain whose certificate covers every
/// name and has more than RenewDaysBeforeExpiry left is left alone, so certificates certbot installs are respected; a
/// domain whose folder is a symlink (certbot's live/ folder) is never written to. Failures are retried with back-off.
public sealed class AcmeService(
    XmppServerOptions options,
    ServedDomains domains,
    CertificateManager certificates,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<AcmeService> logger,
    Http01Responder? http01 = null,
    TlsAlpn01Responder? tlsAlpn01 = null) : BackgroundService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan LastRetry = TimeSpan.FromHours(6);
    private static readonly TimeSpan ValidationTimeout = TimeSpan.FromMinutes(3);

    private AcmeOptions Acme => options.Acme;

    /// The names one certificate covers: the domain and the subdomains of the services this server runs there.
    public static IReadOnlyList<string> NamesFor(XmppServerOptions options, string domain)
    {
        var names = new List<string> { domain };
        if (options.Muc.Enabled) names.Add(options.Muc.Subdomain + "." + domain);
        if (options.Upload.Enabled && options.HttpPort != 0) names.Add(options.Upload.Subdomain + "." + domain);
        if (options.Proxy65.Port > 0) names.Add(options.Proxy65.Subdomain + "." + domain);
        return names.Where(n => n == domain || !options.Acme.ExcludeSubdomains.Contains(n[..n.IndexOf('.')], StringComparer.OrdinalIgnoreCase))
            .Select(n => n.ToLowerInvariant()).Distinct().ToList();
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        // The challenge listener must be up before the CA is asked to connect to it.
        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            var started = new TaskCompletionSource();
            using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            using (stop.Register(() => started.TrySetCanceled()))
            {
                try { await started.Task; }
                catch (TaskCanceledException) { return; }
            }
        }
        logger.LogInformation("ACME: certificates for {Domains} from {Directory}, renewed {Days} days before expiry; {Challenge} challenges on {Where}",
            string.Join(", ", domains.All), Acme.DirectoryUrl, Acme.RenewDaysBeforeExpiry, Acme.Challenge,
            Acme.UsesHttp01 ? $"port {Acme.Http01Port}" : $"the direct TLS ports ({options.C2sTlsPort}, {options.HttpPort})");
        var retry = FirstRetry;
        while (!stop.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                await CheckAllAsync(stop);
                retry = FirstRetry;
                wait = TimeSpan.FromSeconds(Acme.CheckIntervalSeconds);
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                wait = retry;
                logger.LogError("ACME: {Error}; trying again in {Wait}", e is AcmeException or HttpRequestException ? e.Message : e.ToString(), wait);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, LastRetry.Ticks));
            }
            try { await Task.Delay(wait, time, stop); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// Checks every domain and obtains the certificates that are missing, not covering, or due; the first failure ends
    /// the round (and is retried as a whole), so one bad domain does not hammer the CA's rate limits.
    public async Task CheckAllAsync(CancellationToken stop)
    {
        AcmeClient? client = null;
        AcmeAccountKey? key = null;
        try
        {
            foreach (var domain in domains.All)
            {
                var names = NamesFor(options, domain);
                if (Reason(domain, names) is not { } reason) continue;
                if (ManagedElsewhere(domain) is { } other)
                {
                    logger.LogWarning("ACME: {Domain} needs a certificate ({Reason}), but {Path} is a symlink (another tool's, such as certbot's); not writing there",
                        domain, reason, other);
                    continue;
                }
                logger.LogInformation("ACME: ordering a certificate for {Names}: {Reason}", string.Join(", ", names), reason);
                if (client is null)
                {
                    key = AcmeAccountKey.LoadOrCreate(AccountKeyPath());
                    client = new AcmeClient(new Uri(Acme.DirectoryUrl), key, Acme.CaCertificateFile);
                    var account = await client.AccountAsync(Acme.Email, Acme.AcceptTermsOfService, stop);
                    logger.LogInformation("ACME: account {Account} (terms of service: {Terms})", account, await client.TermsOfServiceAsync(stop) ?? "none given");
                }
                await ObtainAsync(client, domain, names, stop);
            }
        }
        finally
        {
            client?.Dispose();
            key?.Dispose();
        }
    }

    /// Why the domain needs a new certificate, or null when the one it has will do.
    private string? Reason(string domain, IReadOnlyList<string> names)
    {
        var current = certificates.Resolve(domain);
        if (current.IsSelfSigned) return "it has a self-signed one";
        var missing = names.Where(n => !current.Covers(n)).ToList();
        if (missing.Count > 0) return $"the current one does not cover {string.Join(", ", missing)}";
        var left = current.Certificate.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime;
        if (left < TimeSpan.FromDays(Acme.RenewDaysBeforeExpiry))
            return $"the current one expires on {current.Certificate.NotAfter.ToUniversalTime():u}, in less than {Acme.RenewDaysBeforeExpiry} days";
        return null;
    }

    private string? ManagedElsewhere(string domain)
    {
        var folder = Path.Combine(Path.GetFullPath(options.CertDir), domain);
        foreach (var path in new[] { folder, Path.Combine(folder, CertificateLocator.FullChain), Path.Combine(folder, CertificateLocator.PrivateKey) })
            if (new FileInfo(path).LinkTarget is not null) return path;
        return null;
    }

    /// The key is per CA (the directory's host), so trying staging first leaves the production account alone.
    private string AccountKeyPath() =>
        Path.Combine(Path.GetFullPath(options.DataDir), "acme", new Uri(Acme.DirectoryUrl).Host + "-account.key");

    private async Task ObtainAsync(AcmeClient client, string domain, IReadOnlyList<string> names, CancellationToken stop)
    {
        var (orderUrl, order) = await client.NewOrderAsync(names, stop);
        foreach (var authorizationUrl in order["authorizations"]!.AsArray().Select(a => a!.GetValue<string>()))
            await AuthorizeAsync(client, authorizationUrl, stop);

        // RFC 8555 §7.4: the CSR names every identifier of the order; a fresh key per certificate.
        using var certificateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + domain, certificateKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names) san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        order = await client.FinalizeAsync(order["finalize"]!.GetValue<string>(), request.CreateSigningRequest(), stop);
        order = await PollAsync(client, orderUrl, order, "valid", ["invalid"], stop);
        var pem = await client.DownloadAsync(order["certificate"]!.GetValue<string>(), stop);
        Install(domain, pem, certificateKey.ExportPkcs8PrivateKeyPem());
    }

    private async Task AuthorizeAsync(AcmeClient client, string url, CancellationToken stop)
    {
        var authorization = await client.GetAsync(url, stop);
        var name = authorization["identifier"]?["value"]?.GetValue<string>() ?? url;
        if (authorization["status"]?.GetValue<string>() == "valid") return;
        var challenge = authorization["challenges"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == Acme.Challenge)
            ?? throw new AcmeException($"the CA offers no {Acme.Challenge} challenge for {name}");
        var token = challenge["token"]!.GetValue<string>();
        if (Acme.UsesHttp01) http01!.Add(token, client.KeyAuthorization(token));
        else tlsAlpn01!.Add(name, client.KeyAuthorization(token));
        try
        {
            await client.RespondAsync(challenge["url"]!.GetValue<string>(), stop);
            authorization = await PollAsync(client, url, authorization, "valid", ["invalid", "deactivated", "expired", "revoked"], stop);
            logger.LogInformation("ACME: {Name} validated ({Challenge})", name, Acme.Challenge);
        }
        catch (AcmeException e) when (e.Type is null && e.Message.StartsWith("invalid", StringComparison.Ordinal))
        {
            var refreshed = await client.GetAsync(url, stop);
            var error = refreshed["challenges"]?.AsArray().Select(c => c?["error"]).FirstOrDefault(x => x is not null);
            var hint = Acme.UsesHttp01
                ? $"is port 80 of {name} forwarded to Xmpp:Acme:Http01Port {Acme.Http01Port}?"
                : $"is port 443 of {name} forwarded to C2sTlsPort {options.C2sTlsPort} or HttpPort {options.HttpPort}?";
            throw new AcmeException($"validating {name} failed ({AcmeClient.Describe(error, "no reason given")}); {hint}");
        }
        finally
        {
            if (Acme.UsesHttp01) http01!.Remove(token);
            else tlsAlpn01!.Remove(name);
        }
    }

    /// Re-reads an order or authorization until it reaches the wanted status (RFC 8555 §7.5.1: poll, honouring a sane pace).
    private async Task<JsonObject> PollAsync(AcmeClient client, string url, JsonObject current, string wanted, string[] failed, CancellationToken stop)
    {
        var deadline = DateTime.UtcNow + ValidationTimeout;
        var pause = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            var status = current["status"]?.GetValue<string>();
            if (status == wanted) return current;
            if (failed.Contains(status))
                throw new AcmeException($"{status}: {AcmeClient.Describe(current["error"], url)}");
            if (DateTime.UtcNow > deadline) throw new AcmeException($"{url} is still '{status}' after {ValidationTimeout.TotalMinutes} minutes");
            await Task.Delay(pause, stop);
            pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 5000));
            current = await client.GetAsync(url, stop);
        }
    }

    /// Checks the issued chain against its key, then writes key and chain (key first, each renamed into place) and
    /// reloads, so TLS handshakes from now on get the new certificate.
    private void Install(string domain, string chainPem, string keyPem)
    {
        using (var check = X509Certificate2.CreateFromPem(chainPem, keyPem))
            logger.LogInformation("ACME: {Domain}: issued {Subject} by {Issuer}, serial {Serial}, valid until {NotAfter:u}",
                domain, check.Subject, check.Issuer, check.SerialNumber, check.NotAfter.ToUniversalTime());
        var folder = Path.Combine(Path.GetFullPath(options.CertDir), domain);
        Directory.CreateDirectory(folder);
        AcmeAccountKey.WritePrivate(Path.Combine(folder, CertificateLocator.PrivateKey), keyPem);
        var chainPath = Path.Combine(folder, CertificateLocator.FullChain);
        File.WriteAllText(chainPath + ".tmp", chainPem);
        File.Move(chainPath + ".tmp", chainPath, overwrite: true);
        if (!certificates.Reload().Contains(domain))
            throw new AcmeException($"the certificate issued for {domain} was written to {folder} but not taken into use (see the errors above)");
    }
}
