// XEP-0363 §6: the HTTP side of file upload: PUT into a signed slot, GET of completed files, CORS for browser clients.
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Http;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Upload;

/// Serves /upload/ID/NAME. A PUT streams the body to a temporary file, checks it is exactly the slot's size, fsyncs
/// and renames it, records it, and only then answers 201; a GET serves only recorded files, so an upload in progress
/// or one that broke off is never visible.
public sealed partial class UploadHttpHandler(UploadSlots slots, UploadFiles files, IStorage storage, UploadModule module,
    TimeProvider time, Metrics.ServerMetrics metrics, ILogger<UploadHttpHandler> logger) : IHttpHandler
{
    private const int CopyBufferBytes = 64 * 1024;

    // Ids with a PUT under way: a second PUT to the same slot meanwhile is refused like a replay.
    // Slot id -> the attempt holding it; an attempt only ever releases its own claim.
    private readonly ConcurrentDictionary<string, long> _uploading = new(StringComparer.Ordinal);
    private long _attempts;

    public PathString PathPrefix => UploadSlots.PathPrefix;

    public Task HandleAsync(HttpContext context)
    {
        var response = context.Response;
        // Browser clients (Converse.js, Movim) upload and download cross-origin; the URLs themselves are the secret.
        response.Headers.AccessControlAllowOrigin = "*";
        if (SlotId(context.Request.Path.Value.AsSpan(PathPrefix.Value!.Length)) is not { } id)
            return Status(context, StatusCodes.Status404NotFound);
        return context.Request.Method switch
        {
            "OPTIONS" => PreflightAsync(context),
            "PUT" => PutAsync(context, id),
            "GET" or "HEAD" => GetAsync(context, id),
            _ => MethodNotAllowed(context),
        };
    }

    // The slot id: the first segment of the path after the prefix, or null when it is not one.
    internal static string? SlotId(ReadOnlySpan<char> afterPrefix)
    {
        var rest = afterPrefix.TrimStart('/');
        var slash = rest.IndexOf('/');
        var id = slash < 0 ? rest : rest[..slash];
        return UploadSlots.IsId(id) ? id.ToString() : null;
    }

    private static Task PreflightAsync(HttpContext context)
    {
        var h = context.Response.Headers;
        h.AccessControlAllowMethods = "GET, HEAD, PUT, OPTIONS";
        // Content-Type beyond the CORS-safelisted ones, and the slot headers XEP-0363 §4 allows.
        h.AccessControlAllowHeaders = "Content-Type, Authorization, Cookie, Expires, Range, If-Range, If-None-Match";
        h.AccessControlMaxAge = "86400";
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        return Task.CompletedTask;
    }

    private async Task PutAsync(HttpContext context, string id)
    {
        var request = context.Request;
        var slot = slots.Verify(id, request.Query["v"]);
        if (slot is null) { await Status(context, StatusCodes.Status403Forbidden, "invalid upload URL"); return; }
        if (time.GetUtcNow().ToUnixTimeSeconds() > slot.Expires) { await Status(context, StatusCodes.Status403Forbidden, "upload URL expired; request a new slot"); return; }
        if (request.ContentLength is not { } length) { await Status(context, StatusCodes.Status411LengthRequired, "Content-Length is required"); return; }
        // XEP-0363 §6: the upload MUST be rejected if Content-Length differs from the announced size.
        if (length > slot.Size) { await Status(context, StatusCodes.Status413PayloadTooLarge, $"this slot takes exactly {slot.Size} bytes"); return; }
        if (length < slot.Size) { await Status(context, StatusCodes.Status400BadRequest, $"this slot takes exactly {slot.Size} bytes"); return; }
        if (slot.ContentType.Length > 0 && !SameMediaType(request.ContentType, slot.ContentType))
        {
            await Status(context, StatusCodes.Status415UnsupportedMediaType, $"this slot takes {slot.ContentType}");
            return;
        }
        var attempt = Interlocked.Increment(ref _attempts);
        var claim = new KeyValuePair<string, long>(id, attempt);
        if (!_uploading.TryAdd(id, attempt)) { await Status(context, StatusCodes.Status409Conflict, "this slot is being uploaded"); return; }
        try
        {
            if (await storage.Uploads.GetAsync(id) is not null) { await Status(context, StatusCodes.Status409Conflict, "this slot has been used"); return; }
            if (await module.QuotaExceededAsync(slot.Owner, slot.Size)) { await Status(context, StatusCodes.Status403Forbidden, "upload quota reached"); return; }
            var temp = files.NewTempPath(id);
            try
            {
                if (!await ReceiveAsync(context, temp, slot.Size))
                {
                    // The slot is free again before the broken attempt's file goes (each attempt has its own file), so
                    // a client that sees the attempt cleaned up can retry at once.
                    _uploading.TryRemove(claim);
                    return;
                }
                files.Commit(temp, id);
            }
            finally
            {
                UploadFiles.DeleteQuietly(temp);
            }
            var type = slot.ContentType.Length > 0 ? slot.ContentType : "application/octet-stream";
            // The record's commit is durable before 201: a client told "done" can rely on the file being there.
            await storage.Uploads.AddAsync(new UploadRecord(id, slot.Owner, slot.FileName, type, slot.Size, time.GetUtcNow()));
            logger.LogInformation("Upload {Id} of {Size} bytes by {Owner} stored", id, slot.Size, slot.Owner);
            metrics.UploadBytes.Add(slot.Size);
            context.Response.StatusCode = StatusCodes.Status201Created;
        }
        finally
        {
            _uploading.TryRemove(claim);
        }
    }

    // Streams exactly size bytes into the file through one small buffer, then fsyncs it. False when the body broke off.
    private async Task<bool> ReceiveAsync(HttpContext context, string path, long size)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = size;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            return await ReceiveIntoAsync(context, path, size, buffer);
        }
        catch (IOException e) when (Xmpp.Storage.StorageStall.IsOutOfSpace(e) || NoRoomFor(path, size))
        {
            // The disk is full (the file's preallocation, a write or the fsync said so): the client may try again
            // later (RFC 4918 §11.5, 507 Insufficient Storage, with Retry-After), and the partial file is deleted by
            // the caller. Logged once per outage, not once per attempt.
            if (Interlocked.Exchange(ref _diskFull, 1) == 0)
                logger.LogError("Uploads: the disk is full ({Message}); uploads are refused with 507 until space is freed", e.Message);
            context.Response.Headers.RetryAfter = "60";
            await Status(context, StatusCodes.Status507InsufficientStorage, "the server's storage is full; try again later");
            return false;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private int _diskFull;

    // .NET reports a failed preallocation as a plain IOException without the errno ("because the disk was full"), so
    // the file system is asked whether the file would have fitted.
    private static bool NoRoomFor(string path, long size)
    {
        try
        {
            return new DriveInfo(Path.GetDirectoryName(path)!).AvailableFreeSpace < size;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private async Task<bool> ReceiveIntoAsync(HttpContext context, string path, long size, byte[] buffer)
    {
        await using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 0, Options = FileOptions.Asynchronous,
            PreallocationSize = size,
        });
        long received = 0;
        try
        {
            int n;
            while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                received += n;
                if (received > size) break;
                await file.WriteAsync(buffer.AsMemory(0, n), context.RequestAborted);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or BadHttpRequestException && !Xmpp.Storage.StorageStall.IsOutOfSpace(e))
        {
            logger.LogInformation("Upload {Path} broke off after {Received} of {Size} bytes: {Message}", Path.GetFileName(path), received, size, e.Message);
            // A body slower than Http:MinRequestBodyBytesPerSecond ends here with Kestrel's 408, and the client is
            // still listening: left at the default 200 it would take the broken upload for a stored one (issue 20).
            await Status(context, e is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status400BadRequest, "the upload broke off; try again");
            return false;
        }
        if (received != size)
        {
            await Status(context, StatusCodes.Status400BadRequest, $"received {received} bytes, expected {size}");
            return false;
        }
        file.Flush(flushToDisk: true);
        if (Interlocked.Exchange(ref _diskFull, 0) == 1)
            logger.LogWarning("Uploads: storing files again");
        return true;
    }

    internal static bool SameMediaType(string? given, string announced)
    {
        if (given is null) return false;
        var semicolon = given.IndexOf(';');
        var type = (semicolon < 0 ? given : given[..semicolon]).Trim();
        return string.Equals(type, announced, StringComparison.OrdinalIgnoreCase);
    }

    private static Task MethodNotAllowed(HttpContext context)
    {
        context.Response.Headers.Allow = "GET, HEAD, PUT, OPTIONS";
        return Status(context, StatusCodes.Status405MethodNotAllowed);
    }

    private static Task Status(HttpContext context, int status, string? text = null)
    {
        if (context.Response.HasStarted) return Task.CompletedTask;
        context.Response.StatusCode = status;
        if (text is null) return Task.CompletedTask;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text + "\n");
    }
}
