namespace Xmpp.Server.Hosting;

/// The data folder belongs to one process at a time: the running server for its whole life, or an admin command that
/// opens the store while no server runs. LiteDB in Direct mode and the archive logs assume a single writer; two
/// processes writing the same files lost acknowledged accounts (issue 19).
///
/// The lock is DataDir/.lock opened with FileShare.None, which .NET on Unix turns into flock(LOCK_EX | LOCK_NB) on the
/// open file. The kernel drops it with the process however it ends, so a kill -9 leaves no stale lock; the file itself
/// stays and means nothing without the flock. The holder's PID goes into DataDir/xmppd.pid for the refusal message (it
/// cannot go into .lock: reading that file would itself ask for a shared flock and be refused).
public sealed class DataDirLock : IDisposable
{
    public const string LockFileName = ".lock";
    public const string PidFileName = "xmppd.pid";

    private readonly FileStream _file;
    private readonly string _pidFile;

    private DataDirLock(string directory, FileStream file)
    {
        Directory = directory;
        _file = file;
        _pidFile = Path.Combine(directory, PidFileName);
    }

    public string Directory { get; }

    /// Takes the lock or throws DataDirLockedException naming the folder and the holder's PID.
    public static DataDirLock Acquire(string dataDir)
    {
        return TryAcquire(dataDir, out var held, out var holder) ? held! : throw new DataDirLockedException(Path.GetFullPath(dataDir), holder);
    }

    public static bool TryAcquire(string dataDir, out DataDirLock? held, out int? holderPid)
    {
        var dir = Path.GetFullPath(dataDir);
        System.IO.Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, LockFileName);
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            // EWOULDBLOCK from flock arrives as a sharing violation (an IOException that is not a missing folder).
            held = null;
            holderPid = ReadPid(Path.Combine(dir, PidFileName));
            return false;
        }
        held = new DataDirLock(dir, file);
        File.WriteAllText(held._pidFile, Environment.ProcessId + "\n");
        holderPid = null;
        return true;
    }

    private static int? ReadPid(string pidFile)
    {
        try
        {
            return int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) ? pid : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        // The PID file goes first, while the lock still keeps others from writing theirs.
        try { File.Delete(_pidFile); } catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
        _file.Dispose();
    }
}

/// Another process holds the data folder.
public sealed class DataDirLockedException(string directory, int? holderPid)
    : Exception($"the data folder {directory} is in use by another process ({(holderPid is { } pid ? "PID " + pid : "PID unknown")})")
{
    public string Directory { get; } = directory;
    public int? HolderPid { get; } = holderPid;
}
