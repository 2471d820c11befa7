using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Running as a systemd service: the unit in contrib/systemd passes systemd's own checks, and the real binary speaks
/// sd_notify (READY=1 once it listens, STOPPING=1 on SIGTERM) and writes journald priorities when systemd says so.
[TestFixture]
public sealed class SystemdTests
{
    private static string Unit => Path.Combine(TestContext.CurrentContext.TestDirectory, "..", "..", "..", "..", "contrib", "systemd", "xmppd.service");

    [Test]
    public async Task The_service_unit_verifies_and_its_exposure_is_at_most_2_of_10()
    {
        var analyze = ClientProcess.RequireProgram("/usr/bin/systemd-analyze", "systemd");
        Assert.That(File.Exists(Unit), Is.True, Unit);
        var dir = Directory.CreateTempSubdirectory("xmppd-unit-");
        try
        {
            // verify insists that ExecStart's program exists; the binary is installed later, so any real one stands in.
            var copy = Path.Combine(dir.FullName, "xmppd.service");
            await File.WriteAllTextAsync(copy, (await File.ReadAllTextAsync(Unit)).Replace("/usr/local/bin/xmppd", "/usr/bin/dotnet"));
            var verify = await ClientProcess.RunAsync(analyze, ["verify", copy], TimeSpan.FromSeconds(30));
            Assert.That(verify.ExitCode, Is.Zero, verify.Describe());
            Assert.That(verify.Stderr.Trim(), Is.Empty, "no warnings: " + verify.Describe());
            // --threshold is in tenths: a score above 2.0 ("OK" ends at 4.9) fails.
            var security = await ClientProcess.RunAsync(analyze, ["security", "--offline=true", "--threshold=20", copy], TimeSpan.FromSeconds(30));
            Assert.That(security.ExitCode, Is.Zero, security.Describe());
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Test]
    public async Task Under_a_notify_unit_the_server_reports_ready_once_it_listens_and_stopping_on_sigterm()
    {
        var dir = Directory.CreateTempSubdirectory("xmppd-notify-");
        var socketPath = Path.Combine(dir.FullName, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(socketPath));
        int port = TestServer.FreePort();
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dir.FullName,
        };
        foreach (var a in new[] { ServerProcess.ServerDll, "run", "--c2s-port", port.ToString(), "--c2s-tls-port", "0", "--http-port", "0",
                     "--data-dir", Path.Combine(dir.FullName, "data"), "--cert-dir", Path.Combine(dir.FullName, "certs"), "--listen", "127.0.0.1" })
            psi.ArgumentList.Add(a);
        psi.Environment["NOTIFY_SOCKET"] = socketPath;
        psi.Environment["JOURNAL_STREAM"] = "8:12345";
        var output = new StringBuilder();
        using var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var ready = await ReceiveAsync(notify, TimeSpan.FromSeconds(60));
            Assert.That(ready, Does.Contain("READY=1"), Snapshot(output));
            // Ready means listening: the port takes a connection at once.
            using (var tcp = new TcpClient()) await tcp.ConnectAsync("127.0.0.1", port);

            Process.Start("kill", ["-TERM", process.Id.ToString()])!.WaitForExit();
            var stopping = await ReceiveAsync(notify, TimeSpan.FromSeconds(30));
            Assert.That(stopping, Does.Contain("STOPPING=1"));
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(exit.Token);
            Assert.That(process.ExitCode, Is.Zero, Snapshot(output));
            var lines = Snapshot(output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines, Is.Not.Empty);
            // journald priorities (sd-daemon(3)): every line starts with <N>, informational ones with <6>.
            Assert.That(lines.All(l => l.Length > 3 && l[0] == '<' && char.IsDigit(l[1]) && l[2] == '>'), Snapshot(output));
            Assert.That(lines.Any(l => l.StartsWith("<6>")), Snapshot(output));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            dir.Delete(true);
        }
    }

    private static string Snapshot(StringBuilder output) { lock (output) return output.ToString(); }

    private static async Task<string> ReceiveAsync(Socket socket, TimeSpan within)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(within);
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
