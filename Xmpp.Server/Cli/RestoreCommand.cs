using System.Globalization;
using Xmpp.Server.Hosting;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;

namespace Xmpp.Server.Cli;

/// xmppd restore BACKUPDIR: puts a folder made by xmppd backup in place of the data folder's contents, with no server
/// running (the data folder's lock is held throughout). What it replaces is moved aside to
/// DATADIR.before-restore-TIMESTAMP, never deleted, so a restore of the wrong backup can itself be undone.
public static class RestoreCommand
{
    public static int Run(IReadOnlyList<string> words, XmppServerOptions options)
    {
        if (words.Count != 2) return AdminCommands.Fail("restore: usage is 'restore BACKUPDIR' (a folder made by xmppd backup)");
        var backup = Path.TrimEndingDirectorySeparator(Path.GetFullPath(words[1]));
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.DataDir));
        if (backup == data || backup.StartsWith(data + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            return AdminCommands.Fail($"the backup folder {backup} is inside the data folder {data}");
        if (!Directory.Exists(backup)) return AdminCommands.Fail($"{backup} does not exist");
        // Complete means the backup got to its last step: the marker is written after everything else.
        if (!File.Exists(Path.Combine(backup, BackupFiles.CompleteMarker)) || !File.Exists(Path.Combine(backup, LiteDbStorage.FileName)))
            return AdminCommands.Fail($"{backup} is not a complete backup (no {BackupFiles.CompleteMarker} or no {LiteDbStorage.FileName}): "
                + "it was cut short or is not from xmppd backup; nothing was changed");

        DataDirLock? held;
        try
        {
            if (!DataDirLock.TryAcquire(data, out held, out var holder))
                return AdminCommands.Fail($"the data folder {data} is in use by {(holder is { } pid ? "PID " + pid : "another process")}: "
                    + "stop the server before restoring; nothing was changed");
        }
        catch (DataDirLockException ex)
        {
            return AdminCommands.Fail(ex.Message);
        }
        using (held)
        {
            var aside = data + ".before-restore-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            try
            {
                BackupFiles.CreateDirectory(aside);
                var moved = 0;
                // The lock and its PID file stay: they belong to this process until it exits.
                foreach (var entry in Directory.EnumerateFileSystemEntries(data).ToList())
                {
                    var name = Path.GetFileName(entry);
                    if (name is DataDirLock.LockFileName or DataDirLock.PidFileName) continue;
                    var to = Path.Combine(aside, name);
                    if (Directory.Exists(entry)) Directory.Move(entry, to);
                    else File.Move(entry, to);
                    moved++;
                }
                var copied = CopyTree(backup, data, top: true);
                Console.WriteLine($"restored {data} from {backup} ({copied} files); what was there before ({moved} entries) is in {aside}");
                return 0;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return AdminCommands.Fail($"the restore into {data} failed part way: {ex.Message}. The data that was there is in {aside}; "
                    + $"empty {data} and run the restore again, or move that folder back");
            }
        }
    }

    private static int CopyTree(string from, string to, bool top)
    {
        var n = 0;
        foreach (var file in Directory.EnumerateFiles(from))
        {
            var name = Path.GetFileName(file);
            if (top && name is BackupFiles.CompleteMarker or DataDirLock.LockFileName or DataDirLock.PidFileName) continue;
            BackupFiles.Copy(file, Path.Combine(to, name));
            n++;
        }
        foreach (var folder in Directory.EnumerateDirectories(from))
        {
            var target = Path.Combine(to, Path.GetFileName(folder));
            BackupFiles.CreateDirectory(target);
            n += CopyTree(folder, target, top: false);
        }
        return n;
    }
}
