using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace Xmpp.Server.Tls.Acme;

/// An error document from the CA (RFC 8555 §6.7, RFC 7807), or a response that broke the protocol.
public sealed class AcmeException(string message, string? type = null) : Exception(message)
{
    public string? Type { get; } = type;
}

/// The RFC 8555 protocol: the directory, nonces, account, orders, authorizations, challenges, finalization and
/// certificate download. Every request is a JWS POST (POST-as-GET for reads, §6.3) signed with the account key.
public sealed class AcmeClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _directoryUrl;
    private readonly AcmeAccountKey _key;
    private JsonObject? _directory;
    private string? _nonce;

    public AcmeClient(Uri directoryUrl, AcmeAccountKey key, string? caCertificateFile)
    {
        _directoryUrl = directoryUrl;
        _key = key;
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(30) };
        if (!string.IsNullOrEmpty(caCertificateFile))
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caCertificateFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            };
        }
        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        // RFC 8555 §6.1: clients send a User-Agent naming themselves.
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("xmppd-acme", "1.0"));
    }

    public string? AccountUrl { get; private set; }

    public string Thumbprint => _key.Thumbprint;

    /// The directory's meta.termsOfService, if it has one (for the log).
    public async Task<string?> TermsOfServiceAsync(CancellationToken cancel) =>
        (await DirectoryAsync(cancel))["meta"]?["termsOfService"]?.GetValue<string>();

    /// Finds or creates the account for our key (RFC 8555 §7.3: an existing account answers 200 with its URL).
    public async Task<string> AccountAsync(string email, bool agreeToTerms, CancellationToken cancel)
    {
        var payload = new JsonObject { ["termsOfServiceAgreed"] = agreeToTerms };
        if (email.Length > 0) payload["contact"] = new JsonArray("mailto:" + email);
        var response = await PostAsync(await EndpointAsync("newAccount", cancel), payload, cancel, useJwk: true);
        AccountUrl = response.Location ?? throw new AcmeException("the CA's newAccount answer has no Location");
        return AccountUrl;
    }

    /// A new order for the names (RFC 8555 §7.4); returns its URL and the order object.
    public async Task<(string Url, JsonObject Order)> NewOrderAsync(IEnumerable<string> names, CancellationToken cancel)
    {
        var identifiers = new JsonArray(names.Select(n => (JsonNode)new JsonObject { ["type"] = "dns", ["value"] = n }).ToArray());
        var response = await PostAsync(await EndpointAsync("newOrder", cancel), new JsonObject { ["identifiers"] = identifiers }, cancel);
        return (response.Location ?? throw new AcmeException("the CA's newOrder answer has no Location"), response.Json);
    }

    public async Task<JsonObject> GetAsync(string url, CancellationToken cancel) => (await PostAsync(url, null, cancel)).Json;

    /// Tells the CA a challenge is ready to be checked (RFC 8555 §7.5.1: the payload is an empty object).
    public async Task<JsonObject> RespondAsync(string challengeUrl, CancellationToken cancel) =>
        (await PostAsync(challengeUrl, new JsonObject(), cancel)).Json;

    public async Task<JsonObject> FinalizeAsync(string finalizeUrl, byte[] csrDer, CancellationToken cancel) =>
        (await PostAsync(finalizeUrl, new JsonObject { ["csr"] = AcmeAccountKey.Base64Url(csrDer) }, cancel)).Json;

    /// The issued certificate with its chain, as PEM (RFC 8555 §7.4.2).
    public async Task<string> DownloadAsync(string certificateUrl, CancellationToken cancel) =>
        (await PostAsync(certificateUrl, null, cancel, accept: "application/pem-certificate-chain")).Text;

    public string KeyAuthorization(string token) => token + "." + _key.Thumbprint;

    private sealed record Response(HttpStatusCode Status, string Text, JsonObject Json, string? Location);

    private async Task<Response> PostAsync(string url, JsonObject? payload, CancellationToken cancel, bool useJwk = false, string? accept = null)
    {
        for (int attempt = 1; ; attempt++)
        {
            var nonce = _nonce ?? await NewNonceAsync(cancel);
            _nonce = null;
            var body = _key.Sign(url, nonce, useJwk ? null : AccountUrl ?? throw new InvalidOperationException("no account yet"),
                payload is null ? null : JsonNode.Parse(payload.ToJsonString()));
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/jose+json");
            if (accept is not null) request.Headers.Accept.ParseAdd(accept);
            using var response = await _http.SendAsync(request, cancel);
            if (response.Headers.TryGetValues("Replay-Nonce", out var nonces)) _nonce = nonces.FirstOrDefault();
            var text = await response.Content.ReadAsStringAsync(cancel);
            var json = response.Content.Headers.ContentType?.MediaType is "application/json" or "application/problem+json" && text.Length > 0
                ? JsonNode.Parse(text) as JsonObject ?? new JsonObject() : new JsonObject();
            if (response.IsSuccessStatusCode)
                return new Response(response.StatusCode, text, json, response.Headers.Location?.ToString());
            var type = json["type"]?.GetValue<string>();
            // RFC 8555 §6.5: a rejected nonce is retried with the fresh one the error carries.
            if (type == "urn:ietf:params:acme:error:badNonce" && attempt < 5) continue;
            throw new AcmeException(Describe(json, $"{(int)response.StatusCode} {response.ReasonPhrase}"), type);
        }
    }

    /// "type: detail" with the subproblems (RFC 8555 §6.7.1), which name the identifier that failed.
    internal static string Describe(JsonNode? problem, string fallback)
    {
        if (problem is null) return fallback;
        var text = $"{problem["type"]?.GetValue<string>() ?? fallback}: {problem["detail"]?.GetValue<string>() ?? ""}";
        if (problem["subproblems"] is JsonArray subs)
            foreach (var s in subs)
                text += $"; {s?["identifier"]?["value"]?.GetValue<string>()}: {s?["detail"]?.GetValue<string>()}";
        return text;
    }

    private async Task<string> NewNonceAsync(CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, await EndpointAsync("newNonce", cancel));
        using var response = await _http.SendAsync(request, cancel);
        return response.Headers.TryGetValues("Replay-Nonce", out var nonces) && nonces.FirstOrDefault() is { } nonce
            ? nonce : throw new AcmeException("the CA's newNonce answer has no Replay-Nonce");
    }

    private async Task<JsonObject> DirectoryAsync(CancellationToken cancel)
    {
        if (_directory is not null) return _directory;
        var text = await _http.GetStringAsync(_directoryUrl, cancel);
        _directory = JsonNode.Parse(text) as JsonObject ?? throw new AcmeException($"{_directoryUrl} is not an ACME directory");
        return _directory;
    }

    private async Task<string> EndpointAsync(string name, CancellationToken cancel) =>
        (await DirectoryAsync(cancel))[name]?.GetValue<string>() ?? throw new AcmeException($"the ACME directory has no {name}");

    public void Dispose() => _http.Dispose();
}
