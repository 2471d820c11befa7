using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Upload;

/// Hands out and checks signed upload slots. A PUT URL carries its slot in the query, signed with HMAC-SHA256 under a
/// secret kept in the data folder, so slots survive restarts and the server keeps no state per slot; the random id
/// makes the GET URL unguessable (XEP-0363 §8).
public sealed class UploadSlots
{
    public const string PathPrefix = "/upload";
    private const string KeyFile = "upload.key";

    private readonly byte[] _key;
    private readonly XmppServerOptions _options;

    public UploadSlots(XmppServerOptions options)
    {
        _options = options;
        _key = LoadOrCreateKey(Path.GetFullPath(options.DataDir));
    }

    /// The base of the URLs for a service's parent domain: the configured public URL or https://DOMAIN:PORT.
    public string BaseUrl(string domain) =>
        _options.Upload.PublicUrl is { Length: > 0 } url
            ? url.TrimEnd('/')
            : string.Create(CultureInfo.InvariantCulture, $"https://{domain}:{_options.HttpPort}");

    public static string NewId() => WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(16));

    public static bool IsId(ReadOnlySpan<char> id)
    {
        if (id.Length != 22) return false;
        foreach (var ch in id)
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_')) return false;
        return true;
    }

    public string GetUrl(string baseUrl, UploadSlot slot) =>
        $"{baseUrl}{PathPrefix}/{slot.Id}/{Uri.EscapeDataString(slot.FileName)}";

    public string PutUrl(string baseUrl, UploadSlot slot)
    {
        var payload = WebEncoders.Base64UrlEncode(Encoding.UTF8.GetBytes(string.Join('\n',
            slot.Owner, slot.FileName, slot.Size.ToString(CultureInfo.InvariantCulture), slot.ContentType,
            slot.Expires.ToString(CultureInfo.InvariantCulture))));
        return $"{GetUrl(baseUrl, slot)}?v={payload}.{Sign(slot.Id, payload)}";
    }

    /// The slot a PUT URL's id and "v" parameter stand for, or null when the signature does not match.
    /// Expiry is the caller's to check, so that it can answer differently.
    public UploadSlot? Verify(string id, string? v)
    {
        if (v is null || !IsId(id)) return null;
        var dot = v.IndexOf('.');
        if (dot <= 0) return null;
        var payload = v[..dot];
        byte[] given;
        try { given = WebEncoders.Base64UrlDecode(v[(dot + 1)..]); }
        catch (FormatException) { return null; }
        var expected = WebEncoders.Base64UrlDecode(Sign(id, payload));
        if (!CryptographicOperations.FixedTimeEquals(given, expected)) return null;
        var fields = Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(payload)).Split('\n');
        if (fields.Length != 5) return null;
        return new UploadSlot(id, fields[0], fields[1], long.Parse(fields[2], CultureInfo.InvariantCulture), fields[3],
            long.Parse(fields[4], CultureInfo.InvariantCulture));
    }

    private string Sign(string id, string payload) =>
        WebEncoders.Base64UrlEncode(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes("xep0363-put\n" + id + "\n" + payload)));

    private static byte[] LoadOrCreateKey(string dataDir)
    {
        Directory.CreateDirectory(dataDir);
        var path = Path.Combine(dataDir, KeyFile);
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            if (existing.Length >= 32) return existing;
        }
        var key = RandomNumberGenerator.GetBytes(32);
        var temp = path + ".tmp";
        var create = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        // Created 0600 from the start: the key signs every upload URL.
        if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var f = new FileStream(temp, create))
        {
            f.Write(key);
            f.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        return key;
    }
}
