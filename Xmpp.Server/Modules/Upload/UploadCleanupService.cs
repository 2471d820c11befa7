using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Hosting;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Upload;

/// Removes uploads older than the retention period, temporary files of uploads that never finished, and files whose
/// record is missing (a crash between the rename and the record), every CleanupIntervalSeconds.
public sealed class UploadCleanupService(XmppServerOptions options, IStorage storage, UploadFiles files, TimeProvider time,
    ILogger<UploadCleanupService> logger) : BackgroundService
{
    private const int Batch = 500;

    // A temporary or unrecorded file older than this belongs to no running upload: slots expire long before.
    private TimeSpan Abandoned => TimeSpan.FromSeconds(Math.Max(3600, options.Upload.SlotLifetimeSeconds * 2L));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!UploadModule.IsEnabled(options)) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.Upload.CleanupIntervalSeconds)), time);
        do
        {
            try
            {
                await RunOnceAsync(time.GetUtcNow());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Upload cleanup failed: {Message}", e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// One pass as of the given time; returns how many files were removed.
    public async Task<int> RunOnceAsync(DateTimeOffset now)
    {
        int removed = 0;
        if (options.Upload.RetentionDays > 0)
        {
            var before = now.AddDays(-options.Upload.RetentionDays);
            while (true)
            {
                var expired = await storage.Uploads.ListCreatedBeforeAsync(before, Batch);
                foreach (var record in expired)
                {
                    // Record first: once it is gone the file is no longer served, so deleting the bytes races with nothing.
                    await storage.Uploads.DeleteAsync(record.Id);
                    UploadFiles.DeleteQuietly(files.PathOf(record.Id));
                    removed++;
                }
                if (expired.Count < Batch) break;
            }
        }
        var stale = now - Abandoned;
        if (Directory.Exists(files.TempRoot))
            foreach (var temp in Directory.EnumerateFiles(files.TempRoot))
                if (File.GetLastWriteTimeUtc(temp) < stale.UtcDateTime) { UploadFiles.DeleteQuietly(temp); removed++; }
        if (Directory.Exists(files.Root))
            foreach (var path in Directory.EnumerateFiles(files.Root))
            {
                var id = Path.GetFileName(path);
                if (File.GetLastWriteTimeUtc(path) >= stale.UtcDateTime) continue;
                if (!UploadSlots.IsId(id) || await storage.Uploads.GetAsync(id) is null) { UploadFiles.DeleteQuietly(path); removed++; }
            }
        if (removed > 0) logger.LogInformation("Upload cleanup removed {Count} files", removed);
        return removed;
    }
}
