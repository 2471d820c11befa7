using System.Runtime.InteropServices;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Upload;

/// Where uploaded bytes live: DIR/ID for complete files, DIR/tmp/ID.RANDOM.part while an upload runs. A file reaches
/// its final name only by an atomic rename after fsync, so a crash leaves either nothing or the whole file.
public sealed class UploadFiles
{
    public UploadFiles(XmppServerOptions options)
    {
        Root = Path.GetFullPath(options.Upload.Directory is { Length: > 0 } d ? d : Path.Combine(options.DataDir, "uploads"));
        TempRoot = Path.Combine(Root, "tmp");
    }

    public string Root { get; }
    public string TempRoot { get; }

    public string PathOf(string id) => Path.Combine(Root, id);

    public string NewTempPath(string id)
    {
        Directory.CreateDirectory(TempRoot);
        return Path.Combine(TempRoot, $"{id}.{Guid.NewGuid():N}.part");
    }

    /// Moves a complete, fsynced temporary file to its final name and makes the rename itself durable. A file already
    /// under that name has no record (the caller holds the slot and found none): a crash came between an earlier
    /// attempt's rename and its record, and that client never got 201, so the retry's file replaces it.
    public void Commit(string tempPath, string id)
    {
        File.Move(tempPath, PathOf(id), overwrite: true);
        SyncDirectory(Root);
    }

    public static void DeleteQuietly(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    // A rename is durable only once its directory is synced; .NET has no API for that, so libc is called on Unix.
    private static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        int fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0) return;
        try { _ = Fsync(fd); }
        finally { _ = Close(fd); }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code, which the project does not allow.
    [DllImport("libc", EntryPoint = "open")]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync")]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
#pragma warning restore SYSLIB1054
}
