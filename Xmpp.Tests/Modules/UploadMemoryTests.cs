using System.Net;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// A 100 MB document goes up and down while the server's memory stays flat: the body is streamed to disk and from it,
/// never buffered whole. Server and client run in this process, so the figures are an upper bound for the server.
[TestFixture]
[NonParallelizable]
public sealed class UploadMemoryTests
{
    private const long Size = 100L * 1024 * 1024;
    private const long Allowed = 32L * 1024 * 1024;

    [Test]
    public async Task A_100_MB_document_goes_up_and_down_with_memory_rising_less_than_32_MB()
    {
        await using var server = await UploadModuleTests.Server();
        await using var romeo = await UploadModuleTests.Connect(server);
        using var http = UploadClient.Http(server);
        var (put, get) = await UploadClient.SlotAsync(romeo, server, "report.pdf", Size, "application/pdf");
        // Warm up the HTTPS connection and the upload path so their one-time costs are not counted.
        var (warmPut, _) = await UploadClient.SlotAsync(romeo, server, "warm.pdf", 1024, "application/pdf");
        using (var warm = await UploadClient.PutAsync(http, warmPut, new PatternStream(1024), 1024, "application/pdf"))
            Assert.That(warm.StatusCode, Is.EqualTo(HttpStatusCode.Created));

        using var source = new PatternStream(Size);
        var up = await Measure(async () =>
        {
            using var response = await UploadClient.PutAsync(http, put, source, Size, "application/pdf");
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        });
        (HttpStatusCode Status, byte[] Sha256, long Length) download = default;
        var down = await Measure(async () => download = await UploadClient.DownloadAsync(http, get));

        Assert.That(download.Status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(download.Length, Is.EqualTo(Size));
        Assert.That(Convert.ToHexString(download.Sha256!), Is.EqualTo(Convert.ToHexString(source.Sha256())));
        var report = $"100 MB upload: managed heap peak +{Mb(up.Heap)} MB, peak RSS +{Mb(up.Rss)} MB; " +
                     $"download: heap +{Mb(down.Heap)} MB, RSS +{Mb(down.Rss)} MB";
        TestContext.Out.WriteLine(report);
        Console.WriteLine(report);
        Assert.That(up.Heap, Is.LessThan(Allowed), report);
        Assert.That(down.Heap, Is.LessThan(Allowed), report);
        if (up.Rss >= 0) Assert.That(up.Rss, Is.LessThan(Allowed), report);
        if (down.Rss >= 0) Assert.That(down.Rss, Is.LessThan(Allowed), report);
    }

    private static string Mb(long bytes) => (bytes / (1024.0 * 1024)).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);

    // Peak managed heap (sampled every few milliseconds) and peak resident set (Linux VmHWM, reset first) above the
    // level before the action; RSS is -1 where /proc is not available.
    private static async Task<(long Heap, long Rss)> Measure(Func<Task> action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long heapBase = GC.GetTotalMemory(forceFullCollection: true);
        bool proc = ResetPeakRss();
        long rssBase = proc ? ReadStatus("VmRSS:") : 0;
        long heapPeak = heapBase;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                heapPeak = Math.Max(heapPeak, GC.GetTotalMemory(false));
                try { await Task.Delay(5, stop.Token); } catch (OperationCanceledException) { }
            }
        });
        await action();
        stop.Cancel();
        await sampler;
        heapPeak = Math.Max(heapPeak, GC.GetTotalMemory(false));
        return (heapPeak - heapBase, proc ? ReadStatus("VmHWM:") - rssBase : -1);
    }

    // Writing 5 to clear_refs resets the peak resident set size (proc(5)).
    private static bool ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long ReadStatus(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key, StringComparison.Ordinal));
        return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
    }
}
