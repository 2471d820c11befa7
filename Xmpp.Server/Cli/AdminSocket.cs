using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Cli;

/// The admin socket's protocol: a Unix socket DataDir/admin.sock that only the server's user can open (mode 0600).
/// The client sends one request as a line of JSON, {"args":["user","add","alice","secret"]}; the server runs it and
/// answers one line, {"exit":0,"output":"created alice@localhost\n","error":""}, then closes the connection.
public static class AdminSocket
{
    public const string FileName = "admin.sock";

    /// Requests are a few words; a longer line is refused before it is buffered.
    public const int MaxRequestBytes = 64 * 1024;

    /// sun_path holds 108 bytes with its terminating zero on Linux.
    public const int MaxPathBytes = 107;

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string PathFor(XmppServerOptions options) => Path.Combine(Path.GetFullPath(options.DataDir), FileName);

    /// Sends a request to the running server; null when no server listens on the socket (no file, or a file left by a
    /// server that was killed). Throws UnauthorizedAccessException when the socket belongs to another user.
    public static async Task<AdminReply?> TrySendAsync(string path, IReadOnlyList<string> args, TimeSpan timeout)
    {
        if (!File.Exists(path) || Encoding.UTF8.GetByteCount(path) > MaxPathBytes) return null;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            return null;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new UnauthorizedAccessException($"permission denied on {path}", ex);
        }
        using var cts = new CancellationTokenSource(timeout);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var request = JsonSerializer.SerializeToUtf8Bytes(new AdminRequest([.. args]), Json);
        await stream.WriteAsync(request, cts.Token);
        await stream.WriteAsync("\n"u8.ToArray(), cts.Token);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var line = await reader.ReadLineAsync(cts.Token)
            ?? throw new IOException($"the server closed {path} without answering");
        return JsonSerializer.Deserialize<AdminReply>(line, Json) ?? throw new IOException($"the server's answer on {path} was empty");
    }
}

public sealed record AdminRequest(string[] Args);

public sealed record AdminReply(int Exit, string Output, string Error);
