using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Auth;
using Xmpp.Server.Cli;
using Xmpp.Server.Modules.Muc;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams;
using Xmpp.Storage;

namespace Xmpp.Server.Hosting;

/// Listens on DataDir/admin.sock and runs the admin commands the CLI sends (AdminSocket has the protocol) through the
/// server's own services, so caches stay coherent and a deleted user's sessions end. Only the server's user can
/// connect: the socket is made 0600 before it listens.
public sealed class AdminSocketService(
    XmppServerOptions options,
    IStorage storage,
    AccountService accounts,
    ISessionDirectory sessions,
    ConnectionTracker connections,
    MucModule muc,
    Limits.BlockList blocks,
    Modules.Blocking.AbuseReports reports,
    TimeProvider time,
    ILogger<AdminSocketService> logger) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task _accepting = Task.CompletedTask;
    private string _path = "";
    private AdminTarget? _target;
    private int _serving;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _path = AdminSocket.PathFor(options);
        if (Encoding.UTF8.GetByteCount(_path) > AdminSocket.MaxPathBytes)
        {
            logger.LogWarning("No admin socket: {Path} is longer than a Unix socket path may be ({Max} bytes); admin commands will not reach this server",
                _path, AdminSocket.MaxPathBytes);
            return Task.CompletedTask;
        }
        _target = new AdminTarget(storage, accounts, options, blocks, reports, new LiveServer(sessions, connections, muc, time.GetUtcNow(), time));
        // We hold the data folder's lock (DataDirLock), so a socket file here was left by a server that was killed.
        File.Delete(_path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(_path));
            // Before Listen: until then a connect is refused, so nobody gets in while the mode is still the umask's.
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(16);
        }
        catch (SocketException ex)
        {
            // The server still serves its users; admin commands then say that nothing answers on the socket.
            listener.Dispose();
            logger.LogError("No admin socket: {Path} could not be opened ({Message}); admin commands will not reach this server", _path, ex.Message);
            return Task.CompletedTask;
        }
        _listener = listener;
        _accepting = AcceptAsync(listener);
        return Task.CompletedTask;
    }

    private async Task AcceptAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(_stopping.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var _ = client;
        Interlocked.Increment(ref _serving);
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: false);
            string? line;
            // The request must arrive promptly; the command then takes as long as it takes (a backup of a large folder).
            using (var reading = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token))
            {
                reading.CancelAfter(TimeSpan.FromSeconds(30));
                line = await ReadLineAsync(stream, reading.Token);
            }
            var reply = line is null
                ? new AdminReply(1, "", $"error: a request is one line of JSON of at most {AdminSocket.MaxRequestBytes} bytes\n")
                : await RunAsync(line);
            using var writing = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await stream.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(reply, AdminSocket.Json), writing.Token);
            await stream.WriteAsync("\n"u8.ToArray(), writing.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException)
        {
            logger.LogDebug(ex, "Admin socket client went away");
        }
        finally
        {
            Interlocked.Decrement(ref _serving);
        }
    }

    private async Task<AdminReply> RunAsync(string line)
    {
        AdminRequest? request;
        try { request = JsonSerializer.Deserialize<AdminRequest>(line, AdminSocket.Json); }
        catch (JsonException ex) { return new AdminReply(1, "", $"error: the request is not valid JSON: {ex.Message}\n"); }
        if (request?.Args is not { Length: > 0 } args || args.Any(a => a is null) || !AdminOperations.Verbs.Contains(args[0]))
            return new AdminReply(1, "", $"error: the request names no admin command ({string.Join(", ", AdminOperations.Verbs)})\n");
        var output = new StringWriter();
        var error = new StringWriter();
        int exit;
        try
        {
            exit = await new AdminOperations(_target!, output, error).RunAsync(args);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Admin command {Command} failed", string.Join(' ', args.Take(3)));
            error.WriteLine($"error: the server failed to run the command: {ex.Message}");
            exit = 1;
        }
        // A password is the fourth word (user add JID PASSWORD): only the first three are logged.
        logger.LogInformation("Admin command {Command} over the admin socket: exit {Exit}", string.Join(' ', args.Take(3)), exit);
        return new AdminReply(exit, output.ToString(), error.ToString());
    }

    /// One line, refused when it grows past MaxRequestBytes (null) rather than buffered.
    private static async Task<string?> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[AdminSocket.MaxRequestBytes];
        int length = 0;
        while (length < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (n == 0) return null;
            int newline = Array.IndexOf(buffer, (byte)'\n', length, n);
            length += n;
            if (newline >= 0) return Encoding.UTF8.GetString(buffer, 0, newline);
        }
        return null;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listener is null) return;
        _stopping.Cancel();
        _listener.Dispose();
        await _accepting;
        // A command under way finishes (and its client hears how) before storage is flushed and closed.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Volatile.Read(ref _serving) > 0 && DateTime.UtcNow < deadline) await Task.Delay(20, CancellationToken.None);
        // A clean stop leaves no socket file, so a CLI sees at once that the server is gone.
        try { File.Delete(_path); } catch (IOException) { }
    }
}
