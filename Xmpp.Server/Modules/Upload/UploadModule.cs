// XEP-0363: HTTP File Upload, the XMPP side: discovery and slot requests. The HTTP side is UploadHttpHandler.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Upload;

/// Serves upload.DOMAIN for every served domain: hands out signed PUT/GET URL pairs for files within the size limit of
/// their kind and the account's quota. Nothing is registered when the HTTPS port is off.
[Xep("XEP-0363", "1.1.0")]
public sealed class UploadModule(XmppServerOptions options, ServedDomains domains, UploadSlots slots, IStorage storage, UploadFiles files, TimeProvider time,
    Metrics.ServerMetrics metrics) : IXmppModule
{
    // Xmpp:RateLimits:UploadSlotsPerMinute, per account.
    private readonly Limits.RateLimiter _slotRate =
        new(options.RateLimits.UploadSlotsPerMinute / 60, options.RateLimits.UploadSlotBurst, time);
    public const string ServiceName = "HTTP File Upload";
    private const int MaxFileNameBytes = 255;

    private UploadOptions Upload => options.Upload;

    public static bool IsEnabled(XmppServerOptions options) => options.Upload.Enabled && options.HttpPort != 0;

    public void Register(IModuleBuilder module)
    {
        if (!IsEnabled(options)) return;
        foreach (var domain in domains.All)
        {
            var service = Upload.Subdomain + "." + domain;
            module.Service(service, domain, ServiceName);
            module.ServiceIq(service, "query", Ns.DiscoInfo, Info);
            module.ServiceIq(service, "query", Ns.DiscoItems, Items);
            module.ServiceIq(service, "request", Ns.HttpUpload, RequestAsync);
        }
        module.OnAccountDeleted(DeleteFilesOfAsync);
    }

    /// The limit for a file of this content type: media (image, audio, video) or anything else.
    public long LimitFor(string contentType) =>
        contentType.StartsWith("image/", StringComparison.OrdinalIgnoreCase)
        || contentType.StartsWith("audio/", StringComparison.OrdinalIgnoreCase)
        || contentType.StartsWith("video/", StringComparison.OrdinalIgnoreCase)
            ? Math.Min(Upload.MaxMediaBytes, Upload.MaxFileBytes)
            : Upload.MaxFileBytes;

    /// Whether storing size more bytes would take the owner past the quota.
    public async ValueTask<bool> QuotaExceededAsync(string owner, long size) =>
        Upload.QuotaBytesPerAccount > 0 && await storage.Uploads.UsedBytesAsync(owner) + size > Upload.QuotaBytesPerAccount;

    private ValueTask Info(IqContext c)
    {
        if (!c.IsGet || !c.To.IsDomain || c.Payload.Attr("node") is not null) return Fail(c, c.IsGet ? StanzaErrors.ItemNotFound : StanzaErrors.BadRequest);
        // XEP-0363 §3: the largest size, as a XEP-0128 extension form, saves clients a failed request.
        var max = Math.Max(Upload.MaxFileBytes, Upload.MaxMediaBytes).ToString(CultureInfo.InvariantCulture);
        c.Result(new Element("query", Ns.DiscoInfo).Add(
            new Element("identity", Ns.DiscoInfo).SetAttr("category", "store").SetAttr("type", "file").SetAttr("name", ServiceName),
            new Element("feature", Ns.DiscoInfo).SetAttr("var", Ns.DiscoInfo),
            new Element("feature", Ns.DiscoInfo).SetAttr("var", Ns.DiscoItems),
            new Element("feature", Ns.DiscoInfo).SetAttr("var", Ns.HttpUpload),
            new DataForm("result", Ns.HttpUpload).AddField("max-file-size", null, max).Element));
        return ValueTask.CompletedTask;
    }

    private static ValueTask Items(IqContext c)
    {
        if (!c.IsGet || !c.To.IsDomain || c.Payload.Attr("node") is not null) return Fail(c, c.IsGet ? StanzaErrors.ItemNotFound : StanzaErrors.BadRequest);
        c.Result(new Element("query", Ns.DiscoItems));
        return ValueTask.CompletedTask;
    }

    private async ValueTask RequestAsync(IqContext c)
    {
        // XEP-0363 §4: a slot is requested with an iq of type get.
        if (!c.IsGet) { c.Error(StanzaErrors.BadRequest, "a slot is requested with type get"); return; }
        if (!c.To.IsDomain) { c.Error(StanzaErrors.ItemNotFound); return; }
        if (c.From.Local is null || !domains.IsLocal(c.From)) { c.Error(StanzaErrors.NotAllowed, "only local accounts may upload"); return; }
        var request = c.Payload;
        if (CheckFileName(request.Attr("filename")) is { } nameProblem) { c.Error(StanzaErrors.BadRequest, nameProblem); return; }
        if (!long.TryParse(request.Attr("size"), NumberStyles.None, CultureInfo.InvariantCulture, out var size))
        {
            c.Error(StanzaErrors.BadRequest, "size must be a number of bytes");
            return;
        }
        var contentType = request.Attr("content-type")?.Trim() ?? "";
        if (contentType.Length > 0 && !IsMediaType(contentType)) { c.Error(StanzaErrors.BadRequest, "content-type is not a media type"); return; }

        var limit = LimitFor(contentType);
        if (size > limit)
        {
            // XEP-0363 §5: not-acceptable with the limit, so the client can tell its user.
            var max = limit.ToString(CultureInfo.InvariantCulture);
            c.Error(StanzaErrors.NotAcceptable, $"File too large. The maximum file size is {max} bytes", "modify",
                new Element("file-too-large", Ns.HttpUpload).Add(new Element("max-file-size", Ns.HttpUpload).SetText(max)));
            return;
        }
        var owner = c.From.Bare.ToString();
        if (!_slotRate.TryTake(owner))
        {
            // Slot abuse: the PUT checks the quota again, but each slot is still work for a flood to make us do.
            // RFC 6120 §8.3.3.12, type wait.
            metrics.Refuse("upload-slot-rate");
            c.Error(StanzaErrors.PolicyViolation, "Too many upload slots requested: slow down", "wait");
            return;
        }
        if (Upload.QuotaBytesPerAccount > 0)
        {
            var used = await storage.Uploads.UsedBytesAsync(owner);
            if (used + size > Upload.QuotaBytesPerAccount)
            {
                // XEP-0363 §5: a quota is a temporary error; space frees up as old files expire or are deleted.
                metrics.Refuse("upload-quota");
                c.Error(StanzaErrors.ResourceConstraint,
                    $"Quota reached: {used} of {Upload.QuotaBytesPerAccount} bytes in use", "wait");
                return;
            }
        }

        var expires = time.GetUtcNow().AddSeconds(Upload.SlotLifetimeSeconds).ToUnixTimeSeconds();
        var slot = new UploadSlot(UploadSlots.NewId(), owner, request.Attr("filename")!, size, contentType, expires);
        var baseUrl = slots.BaseUrl(c.To.Domain[(Upload.Subdomain.Length + 1)..]);
        c.Result(new Element("slot", Ns.HttpUpload).Add(
            new Element("put", Ns.HttpUpload).SetAttr("url", slots.PutUrl(baseUrl, slot)),
            new Element("get", Ns.HttpUpload).SetAttr("url", slots.GetUrl(baseUrl, slot))));
    }

    // The name ends up in a URL and a Content-Disposition header, so path separators and control characters are refused.
    internal static string? CheckFileName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "filename is required";
        if (System.Text.Encoding.UTF8.GetByteCount(name) > MaxFileNameBytes) return $"filename is longer than {MaxFileNameBytes} bytes";
        if (name is "." or "..") return "filename is not a file name";
        foreach (var ch in name)
            if (char.IsControl(ch) || ch is '/' or '\\') return "filename contains a path separator or control character";
        return null;
    }

    // RFC 6838 §4.2: type "/" subtype, restricted names; parameters are not part of a slot's type.
    internal static bool IsMediaType(string value)
    {
        var slash = value.IndexOf('/');
        if (slash <= 0 || slash == value.Length - 1 || value.Length > 255) return false;
        foreach (var ch in value)
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '/' or '!' or '#' or '$' or '&' or '-' or '^' or '_' or '.' or '+')) return false;
        return value.IndexOf('/', slash + 1) < 0;
    }

    private async ValueTask DeleteFilesOfAsync(string user)
    {
        foreach (var domain in domains.All)
            foreach (var record in await storage.Uploads.ListByOwnerAsync(user + "@" + domain))
            {
                await storage.Uploads.DeleteAsync(record.Id);
                UploadFiles.DeleteQuietly(files.PathOf(record.Id));
            }
    }

    private static ValueTask Fail(IqContext c, string condition)
    {
        c.Error(condition);
        return ValueTask.CompletedTask;
    }
}
