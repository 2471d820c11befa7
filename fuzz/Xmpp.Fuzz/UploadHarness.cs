using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Upload;
using Xmpp.Storage;

namespace Xmpp.Fuzz;

/// The HTTP side of XEP-0363 uploads (Xmpp.Server/Modules/Upload): the slot id in the path, the signed "v" parameter,
/// Range, If-None-Match and Content-Type, and the Content-Disposition built from the file name. Nothing throws;
/// a slot the module would hand out survives its PUT URL; a range stays inside the file; a header value holds no
/// control character. Input: lines (LF) of path, v, Range, file size, Content-Type sent, Content-Type announced,
/// If-None-Match, file name.
public static class UploadHarness
{
    private static readonly UploadSlots Slots = new(new XmppServerOptions
    {
        DataDir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "xmpp-fuzz-upload")).FullName,
    });

    private const string Id = "AAAAAAAAAAAAAAAAAAAAAA";

    public static void Run(byte[] data)
    {
        FuzzAssert.WithinAllocationBound(data.Length, () => { Check(data); return 0; });
    }

    private static void Check(byte[] data)
    {
        var lines = Encoding.UTF8.GetString(data).Split('\n');
        string Line(int i) => i < lines.Length ? lines[i] : "";

        if (UploadHttpHandler.SlotId(Line(0)) is { } id)
            FuzzAssert.True(UploadSlots.IsId(id), $"'{id}' taken from the path is not a slot id");
        _ = Slots.Verify(Id, Line(1));
        _ = Slots.Verify(Line(0), Line(1));

        long size = long.TryParse(Line(3), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 1000;
        var range = UploadHttpHandler.ParseRange(Line(2), size, out var offset, out var count);
        if (range == UploadHttpHandler.RangeResult.Partial)
            FuzzAssert.True(offset >= 0 && count >= 1 && offset <= size - count, $"range {offset}+{count} outside a file of {size} bytes");

        _ = UploadHttpHandler.SameMediaType(Line(4), Line(5));
        var context = new DefaultHttpContext();
        context.Request.Headers.IfNoneMatch = Line(6);
        _ = UploadHttpHandler.IfNoneMatch(context.Request, "\"" + Id + "\"");

        var fileName = Line(7);
        var contentType = Line(5).Trim();
        if (UploadModule.CheckFileName(fileName) is null && (contentType.Length == 0 || UploadModule.IsMediaType(contentType)))
        {
            var slot = new UploadSlot(UploadSlots.NewId(), "user@example.org", fileName, size, contentType, 1_900_000_000);
            var url = new Uri(Slots.PutUrl("https://example.org:5281", slot));
            var path = url.AbsolutePath;
            FuzzAssert.True(path.StartsWith(UploadSlots.PathPrefix + "/", StringComparison.Ordinal), $"PUT URL path {path}");
            FuzzAssert.True(UploadHttpHandler.SlotId(path.AsSpan(UploadSlots.PathPrefix.Length)) == slot.Id, "the PUT URL's path does not give the slot id");
            var v = url.Query.StartsWith("?v=", StringComparison.Ordinal) ? Uri.UnescapeDataString(url.Query[3..]) : null;
            FuzzAssert.True(Slots.Verify(slot.Id, v) == slot, "a slot the module hands out does not verify from its own PUT URL");
            var disposition = UploadHttpHandler.ContentDisposition(new UploadRecord(slot.Id, slot.Owner, fileName, contentType, size, DateTimeOffset.UnixEpoch));
            FuzzAssert.True(disposition.All(ch => ch is >= ' ' and < (char)127), "Content-Disposition holds a character outside printable ASCII");
        }
    }
}
