using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.Hosting;

/// Socket completions run on the runtime's socket engine threads (one per core) instead of being queued to the thread
/// pool: a stanza then goes from its socket's completion through TLS, the parser and the router to the recipient's
/// socket without waiting for a pool thread (issue 18: median −25 %, the 1,000 msgs/s p99 from 1.2–7.8 ms to under
/// 0.9 ms, −30 % server CPU per login, bench/results/2026-12-07-s26-latency-memory-experiments.md). The price is that
/// nothing on those threads may block: storage reads, file reads and key derivation leave for the pool first
/// (Xmpp.Storage.BlockingWork). Opt-in (DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 in the service's environment),
/// not the default: a synchronous wait for socket I/O on an engine thread deadlocks that engine, and CI found one
/// (PostgresStorage.Archive waits for its table to be created; `xmppd migrate` hung in it). Every such wait must go
/// before this can be the default.
public static class InlineSocketCompletions
{
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// Whether a receive that completes later continues on a thread the pool does not own (so completions run inline):
    /// a loopback pair, one byte. The setting is the runtime's, so this checks it still has its documented effect.
    public static async Task<bool> ProbeAsync(CancellationToken ct)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, ct);
        using var server = await listener.AcceptAsync(ct);
        var buffer = new byte[1];
        var receive = Receive(server, buffer, ct);
        await Task.Delay(20, ct); // the receive is pending in the engine before the byte is sent
        await client.SendAsync(new byte[] { 1 }, SocketFlags.None, ct);
        return await receive;
    }

    private static async Task<bool> Receive(Socket socket, byte[] buffer, CancellationToken ct)
    {
        await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
        return !Thread.CurrentThread.IsThreadPoolThread;
    }
}

/// Says at start whether socket completions run inline, and warns when they were asked for and do not (a runtime that
/// no longer honours the variable): the latency figures depend on it.
internal sealed class InlineSocketCompletionsCheck(ILogger<InlineSocketCompletionsCheck> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        // The runtime inlines only when asked: without the variable there is nothing to check, and no probe at every start.
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions.Variable) != "1")
        {
            logger.LogInformation("Socket completions run on the thread pool ({Variable} is not 1)", InlineSocketCompletions.Variable);
            return;
        }
        bool inline;
        try { inline = await InlineSocketCompletions.ProbeAsync(ct).WaitAsync(TimeSpan.FromSeconds(5), ct); }
        catch (Exception ex) when (ex is SocketException or TimeoutException)
        {
            logger.LogWarning("Could not check where socket completions run: {Message}", ex.Message);
            return;
        }
        if (inline)
            logger.LogInformation("Socket completions run inline on {Count} socket engine threads", Environment.ProcessorCount);
        else
            logger.LogWarning("Socket completions were asked to run inline ({Variable}=1) but run on the thread pool: this runtime does not honour the setting", InlineSocketCompletions.Variable);
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
