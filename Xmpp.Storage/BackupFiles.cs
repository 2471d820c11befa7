namespace Xmpp.Storage;

// File copies for backups: owner-only (the data holds SCRAM keys and secrets) and on disk when the copy returns.
public static class BackupFiles
{
    public static void Copy(string source, string destination)
    {
        // The stores keep their files open with FileShare.ReadWrite, so reading alongside the writer is allowed.
        using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var output = new FileStream(destination, options);
        input.CopyTo(output);
        output.Flush(flushToDisk: true);
    }

    // A folder the backup creates, owner-only like the files in it.
    public static void CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(path);
        else Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    // The last file a backup writes; a folder without it is not a complete backup.
    public const string CompleteMarker = "BACKUP-COMPLETE";

    public static void MarkComplete(string backup, string source)
    {
        var marker = Path.Combine(backup, CompleteMarker);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var output = new FileStream(marker, options))
        using (var writer = new StreamWriter(output))
            writer.Write($"xmppd backup of {source}, completed {DateTimeOffset.UtcNow:yyyy-MM-dd'T'HH:mm:ss'Z'}\n");
    }
}
