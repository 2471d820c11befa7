using System.Runtime.InteropServices;

namespace Xmpp.Tests.Support;

/// What the private service instances (Redis, HAProxy) share: stopping what an earlier test run left behind.
public static class PrivateInstances
{
    /// Instances of earlier runs whose test process died without stopping them: their temp folder (PREFIX-OWNERPID-…)
    /// names the owner, and the pid file in it names the service process, killed only if it is still that program.
    public static void StopLeftovers(string folderPrefix, string pidFile, string program)
    {
        foreach (var root in Directory.GetDirectories(Path.GetTempPath(), folderPrefix + "-*"))
        {
            var parts = Path.GetFileName(root).Split('-');
            if (parts.Length < 4 || !int.TryParse(parts[2], out var owner) || Directory.Exists($"/proc/{owner}")) continue;
            try
            {
                if (int.TryParse(File.ReadAllText(Path.Combine(root, pidFile)).Trim(), out var pid)
                    && File.ReadAllText($"/proc/{pid}/cmdline").Contains(program, StringComparison.Ordinal))
                    kill(pid, 9);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
