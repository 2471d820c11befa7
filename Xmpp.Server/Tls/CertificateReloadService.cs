using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Tls;

/// Reloads the certificates when the files in the certificate folder change: a FileSystemWatcher for prompt notice,
/// a periodic re-scan for what it cannot see (a folder that is a symlink into /etc/letsencrypt, network file
/// systems, a full notification queue), and SIGHUP for operators and certbot deploy hooks. Changes are debounced,
/// because certbot and cp write a certificate and its key as separate steps.
public sealed class CertificateReloadService(CertificateManager certificates, XmppServerOptions options, ILogger<CertificateReloadService> logger)
    : BackgroundService
{
    /// Quiet time after the last change before the files are read.
    public static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(500);

    private readonly SemaphoreSlim _signal = new(0, int.MaxValue);
    private volatile bool _force;
    private PosixSignalRegistration? _hup;

    /// SIGHUP is taken before any listener opens: ExecuteAsync runs on the thread pool (.NET 10) and may start late
    /// under load, and a SIGHUP with no handler ends the process (its default action).
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _hup ??= OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            // Handled here, so SIGHUP no longer ends the process.
            c.Cancel = true;
            logger.LogInformation("SIGHUP: reloading the TLS certificates");
            Request(force: true);
        });
        return base.StartAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _hup?.Dispose();
        base.Dispose();
    }

    /// Asks for a reload soon; force reads the files even if they look unchanged.
    public void Request(bool force = false)
    {
        if (force) _force = true;
        _signal.Release();
    }

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        var directory = Path.GetFullPath(options.CertDir);
        using var watcher = Watch(directory);
        var rescan = options.CertificateRescanSeconds > 0 ? TimeSpan.FromSeconds(options.CertificateRescanSeconds) : Timeout.InfiniteTimeSpan;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await _signal.WaitAsync(rescan, stop);
                // Wait until the writes have stopped for Debounce, draining the notifications they raised.
                while (await _signal.WaitAsync(Debounce, stop)) { }
                var force = _force;
                _force = false;
                try
                {
                    certificates.Reload(force);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "Reloading the TLS certificates failed; the loaded ones stay in use");
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
    }

    private FileSystemWatcher? Watch(string directory)
    {
        if (!Directory.Exists(directory))
        {
            logger.LogWarning("The certificate folder {Directory} does not exist; new certificates there are found by the periodic re-scan", directory);
            return null;
        }
        try
        {
            var watcher = new FileSystemWatcher(directory)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
            };
            watcher.Changed += (_, _) => Request();
            watcher.Created += (_, _) => Request();
            watcher.Deleted += (_, _) => Request();
            watcher.Renamed += (_, _) => Request();
            watcher.Error += (_, e) =>
            {
                logger.LogWarning("Watching {Directory} for certificates failed ({Error}); the periodic re-scan still finds changes", directory, e.GetException().Message);
                Request();
            };
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException or UnauthorizedAccessException)
        {
            // inotify instances are limited per user (fs.inotify.max_user_instances).
            logger.LogWarning("Cannot watch {Directory} for certificates ({Error}); changes are found by the periodic re-scan", directory, e.Message);
            return null;
        }
    }
}
