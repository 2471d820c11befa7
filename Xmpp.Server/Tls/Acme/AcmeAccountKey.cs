using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Xmpp.Server.Tls.Acme;

/// The ACME account's key pair (ECDSA P-256, signing with ES256: RFC 7518 §3.4) and the JWS it signs (RFC 8555 §6.2).
public sealed class AcmeAccountKey : IDisposable
{
    private readonly ECDsa _key;

    private AcmeAccountKey(ECDsa key)
    {
        _key = key;
        var p = key.ExportParameters(false);
        // RFC 7638 §3.2: the thumbprint hashes the required members in lexicographic order, no whitespace.
        JwkJson = $"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{Base64Url(p.Q.X!)}\",\"y\":\"{Base64Url(p.Q.Y!)}\"}}";
        Thumbprint = Base64Url(SHA256.HashData(Encoding.UTF8.GetBytes(JwkJson)));
    }

    public string JwkJson { get; }

    /// RFC 7638 JWK thumbprint, the second half of every key authorization (RFC 8555 §8.1).
    public string Thumbprint { get; }

    /// Reads the key from path, or creates it there (mode 0600 from the start: whoever holds it controls the account).
    public static AcmeAccountKey LoadOrCreate(string path)
    {
        var key = ECDsa.Create();
        try
        {
            if (File.Exists(path))
            {
                key.ImportFromPem(File.ReadAllText(path));
                if (key.KeySize != 256) throw new CryptographicException($"{path} is not a P-256 key");
                return new AcmeAccountKey(key);
            }
            key.GenerateKey(ECCurve.NamedCurves.nistP256);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            WritePrivate(path, key.ExportPkcs8PrivateKeyPem());
            return new AcmeAccountKey(key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// Writes a secret next to its final name and renames it into place, readable by the owner only.
    internal static void WritePrivate(string path, string text)
    {
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }

    /// A flattened JWS (RFC 7515 §7.2.2) for url: with the JWK until the account URL (kid) is known (RFC 8555 §6.2);
    /// a null payload is a POST-as-GET (empty payload, §6.3).
    public string Sign(string url, string nonce, string? kid, JsonNode? payload)
    {
        var header = new JsonObject { ["alg"] = "ES256", ["nonce"] = nonce, ["url"] = url };
        if (kid is null) header["jwk"] = JsonNode.Parse(JwkJson);
        else header["kid"] = kid;
        var protectedPart = Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString()));
        var payloadPart = payload is null ? "" : Base64Url(Encoding.UTF8.GetBytes(payload.ToJsonString()));
        // ES256 signatures are r || s, 32 bytes each (RFC 7518 §3.4), which is .NET's IEEE P1363 format.
        var signature = _key.SignData(Encoding.ASCII.GetBytes(protectedPart + "." + payloadPart), HashAlgorithmName.SHA256,
            DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return JsonSerializer.Serialize(new { @protected = protectedPart, payload = payloadPart, signature = Base64Url(signature) });
    }

    public static string Base64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public void Dispose() => _key.Dispose();
}
