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

    /// Takes the lock or throws DataDirLockException naming the folder and the holder's PID.
    public static DataDirLock Acquire(string dataDir)
    {
        if (TryAcquire(dataDir, out var held, out var holder)) return held!;
        throw new DataDirLockException(
            $"the data folder {Path.GetFullPath(dataDir)} is in use by another process ({(holder is { } pid ? "PID " + pid : "PID unknown")}): "
            + "is xmppd running already? The admin commands talk to a running server; stop it before starting another", holder);
    }

    /// False when another process holds the lock; throws DataDirLockException when no lock can protect the folder.
    public static bool TryAcquire(string dataDir, out DataDirLock? held, out int? holderPid)
    {
        var dir = Path.GetFullPath(dataDir);
        // With .NET's file locking switched off, FileShare.None would succeed in every process and protect nothing.
        if (AppContext.TryGetSwitch("System.IO.DisableFileLocking", out var off) && off
            || Environment.GetEnvironmentVariable("DOTNET_SYSTEM_IO_DISABLEFILELOCKING") is "1" or "true")
            throw new DataDirLockException(
                $"file locking is switched off in this process (DOTNET_SYSTEM_IO_DISABLEFILELOCKING), so the data folder {dir} "
                + "cannot be protected from a second process; unset it");
        // A new data folder is the owner's alone (0700): it holds the accounts' keys, archives and the servers' secrets.
        // An existing one keeps the mode its operator gave it.
        if (OperatingSystem.IsWindows()) System.IO.Directory.CreateDirectory(dir);
        else System.IO.Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var path = Path.Combine(dir, LockFileName);
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (ex.GetType() == typeof(IOException))
        {
            // EWOULDBLOCK from flock arrives as a plain IOException, "being used by another process" (HResult the errno).
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

/// The data folder cannot be taken: another process holds it (HolderPid when known), or locking is off.
public sealed class DataDirLockException(string message, int? holderPid = null) : Exception(message)
{
    public int? HolderPid { get; } = holderPid;
}
