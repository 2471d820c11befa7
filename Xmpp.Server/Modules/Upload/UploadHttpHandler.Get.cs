using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Upload;

// GET and HEAD: caching (RFC 9111), conditional requests and single byte ranges (RFC 9110 §13, §14).
public sealed partial class UploadHttpHandler
{
    private async Task GetAsync(HttpContext context, string id)
    {
        var record = await storage.Uploads.GetAsync(id);
        var path = files.PathOf(id);
        if (record is null || !File.Exists(path)) { await Status(context, StatusCodes.Status404NotFound); return; }
        var request = context.Request;
        var response = context.Response;
        var h = response.Headers;
        // A file never changes under its id, so the id is a strong validator and the response may be cached for good.
        var etag = "\"" + id + "\"";
        h.ETag = etag;
        h.CacheControl = "public, max-age=31536000, immutable";
        h.LastModified = record.Created.ToString("R", CultureInfo.InvariantCulture);
        h.AcceptRanges = "bytes";
        h.AccessControlExposeHeaders = "Content-Length, Content-Range, Content-Disposition, ETag";
        h.XContentTypeOptions = "nosniff";
        // Uploaded HTML or SVG must not run as a page of this origin.
        h.ContentSecurityPolicy = "default-src 'none'; sandbox";
        h.ContentDisposition = ContentDisposition(record);
        response.ContentType = record.ContentType;

        if (IfNoneMatch(request, etag))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        long offset = 0, count = record.Size;
        var range = request.Headers.Range.ToString();
        // RFC 9110 §13.1.5: If-Range with another validator means "send the whole file".
        var ifRange = request.Headers.IfRange.ToString();
        if (range.Length > 0 && (ifRange.Length == 0 || ifRange == etag))
        {
            switch (ParseRange(range, record.Size, out offset, out count))
            {
                case RangeResult.Unsatisfiable:
                    h.ContentRange = "bytes */" + record.Size.ToString(CultureInfo.InvariantCulture);
                    response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                    return;
                case RangeResult.Partial:
                    h.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {offset}-{offset + count - 1}/{record.Size}");
                    response.StatusCode = StatusCodes.Status206PartialContent;
                    break;
                default:
                    offset = 0;
                    count = record.Size;
                    break;
            }
        }
        response.ContentLength = count;
        if (HttpMethods.IsHead(request.Method) || count == 0) return;
        try
        {
            await response.SendFileAsync(path, offset, count, context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            // The client went away mid-download; nothing to clean up.
        }
        catch (FileNotFoundException)
        {
            // Removed by retention between the lookup and the send; the response has not started.
            if (!response.HasStarted) response.StatusCode = StatusCodes.Status404NotFound;
        }
    }

    internal static bool IfNoneMatch(HttpRequest request, string etag)
    {
        var value = request.Headers.IfNoneMatch.ToString();
        if (value.Length == 0) return false;
        if (value.Trim() == "*") return true;
        foreach (var part in value.Split(','))
        {
            var tag = part.Trim();
            if (tag.StartsWith("W/", StringComparison.Ordinal)) tag = tag[2..]; // weak comparison (RFC 9110 §13.1.2)
            if (tag == etag) return true;
        }
        return false;
    }

    internal enum RangeResult { Whole, Partial, Unsatisfiable }

    // One range of "bytes=a-b", "bytes=a-" or "bytes=-n". Several ranges or a syntax error: the whole file is sent,
    // which RFC 9110 §14.2 allows ("a server MAY ignore the Range header field").
    internal static RangeResult ParseRange(string header, long size, out long offset, out long count)
    {
        offset = 0;
        count = size;
        if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase)) return RangeResult.Whole;
        var spec = header[6..].Trim();
        if (spec.Contains(',')) return RangeResult.Whole;
        var dash = spec.IndexOf('-');
        if (dash < 0) return RangeResult.Whole;
        var first = spec[..dash].Trim();
        var last = spec[(dash + 1)..].Trim();
        const NumberStyles digits = NumberStyles.None;
        if (first.Length == 0)
        {
            if (!long.TryParse(last, digits, CultureInfo.InvariantCulture, out var suffix)) return RangeResult.Whole;
            if (suffix == 0 || size == 0) return RangeResult.Unsatisfiable; // RFC 9110 §14.1.3
            count = Math.Min(suffix, size);
            offset = size - count;
            return RangeResult.Partial;
        }
        if (!long.TryParse(first, digits, CultureInfo.InvariantCulture, out var start)) return RangeResult.Whole;
        long end = size - 1;
        if (last.Length > 0)
        {
            if (!long.TryParse(last, digits, CultureInfo.InvariantCulture, out end) || end < start) return RangeResult.Whole;
            end = Math.Min(end, size - 1);
        }
        if (start >= size) return RangeResult.Unsatisfiable;
        offset = start;
        count = end - start + 1;
        return RangeResult.Partial;
    }

    // RFC 6266 §4.3: an ASCII fallback in filename, the real name in filename* (RFC 8187). Media is shown inline,
    // anything else is downloaded; SVG is an image that can hold script, so it is downloaded like HTML and XML.
    internal static string ContentDisposition(UploadRecord record)
    {
        var inline = record.ContentType.StartsWith("image/", StringComparison.OrdinalIgnoreCase)
                && !record.ContentType.StartsWith("image/svg", StringComparison.OrdinalIgnoreCase)
            || record.ContentType.StartsWith("audio/", StringComparison.OrdinalIgnoreCase)
            || record.ContentType.StartsWith("video/", StringComparison.OrdinalIgnoreCase);
        var ascii = new StringBuilder(record.FileName.Length);
        foreach (var ch in record.FileName)
            ascii.Append(ch is >= ' ' and < (char)127 and not ('"' or '\\' or '%') ? ch : '_');
        // Uri.EscapeDataString leaves only unreserved characters, all of them RFC 8187 attr-chars.
        return $"{(inline ? "inline" : "attachment")}; filename=\"{ascii}\"; filename*=UTF-8''{Uri.EscapeDataString(record.FileName)}";
    }
}
