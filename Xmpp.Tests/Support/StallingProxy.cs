using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Xmpp.Tests.Support;

/// A loopback TCP relay to one port that passes bytes through until told to stall: then it holds everything, in both
/// directions and on every connection (new ones too), and forwards nothing until the stall ends, when what it held
/// goes on in order; or until it is told to cut, when every connection is closed and what it held is dropped, as a
/// broken network path would. Between a cluster node and Redis: a Redis that answers late, or a write that is lost.
/// With a reply delay, it also holds every byte coming back from the target for that long (the other direction
/// passes at once): a slow link, as between a cluster node and a distant Redis.
public sealed class StallingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Link> _links = [];
    private readonly int _target;
    private readonly TimeSpan _replyDelay;
    private readonly Task _accepting;
    // Completed while bytes pass; a new, pending one while stalled.
    private TaskCompletionSource _open = Opened();
    private (byte[] Pattern, TimeSpan Duration, TaskCompletionSource Started, bool Replies)? _trigger;

    public StallingProxy(int targetPort, TimeSpan replyDelay = default)
    {
        _target = targetPort;
        _replyDelay = replyDelay;
        _listener.Start();
        _accepting = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private sealed class Link(Socket client, Socket upstream)
    {
        public readonly Socket Client = client, Upstream = upstream;
        public readonly CancellationTokenSource Cut = new();
    }

    private static TaskCompletionSource Opened()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    /// Holds everything from now until Release or Cut.
    public void Stall()
    {
        lock (_links) StallLocked();
    }

    private TaskCompletionSource StallLocked()
    {
        if (_open.Task.IsCompleted) _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _open;
    }

    /// Forgets a StallOnAsync pattern that has not been seen yet.
    public void Disarm()
    {
        lock (_links) _trigger = null;
    }

    /// Forwards what is held, in order, and passes bytes again.
    public void Release()
    {
        lock (_links) _open.TrySetResult();
    }

    /// Stalls for duration (infinite: until Release or Cut) from the first chunk a client sends, from now on, that
    /// contains pattern (ASCII; that chunk is held too); with replies, the first such chunk the target sends back (for
    /// Redis: a reply or a pub/sub message to the client). Completes when the stall begins.
    public async Task StallOnAsync(string pattern, TimeSpan duration, TimeSpan timeout, bool replies = false)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_links) _trigger = (Encoding.ASCII.GetBytes(pattern), duration, started, replies);
        try { await started.Task.WaitAsync(timeout); }
        finally { lock (_links) if (_trigger?.Started == started) _trigger = null; }
    }

    /// Closes every connection at once (a reset), dropping what is held, and passes bytes on new connections.
    public void Cut()
    {
        lock (_links)
        {
            foreach (var link in _links) Close(link);
            _links.Clear();
            _open.TrySetResult();
        }
    }

    private static void Close(Link link)
    {
        link.Cut.Cancel();
        foreach (var s in new[] { link.Client, link.Upstream })
        {
            try { s.LingerState = new LingerOption(true, 0); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            s.Dispose();
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            var link = new Link(client, upstream);
            lock (_links) _links.Add(link);
            try { await upstream.ConnectAsync(IPAddress.Loopback, _target, _stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                lock (_links) _links.Remove(link);
                Close(link);
                continue;
            }
            _ = Task.Run(() => PumpAsync(link, client, upstream, fromClient: true));
            _ = Task.Run(() => PumpAsync(link, upstream, client, fromClient: false));
        }
    }

    // One direction of one connection: a reader that queues each chunk (and checks what a client sends against the
    // trigger) and a writer that sends each one once the proxy does not stall.
    private async Task PumpAsync(Link link, Socket from, Socket to, bool fromClient)
    {
        var chunks = Channel.CreateUnbounded<(long Due, byte[] Bytes)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var delay = fromClient ? TimeSpan.Zero : _replyDelay;
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, link.Cut.Token);
        var ct = stopping.Token;
        var writing = Task.Run(async () =>
        {
            try
            {
                await foreach (var (due, bytes) in chunks.Reader.ReadAllAsync(ct))
                {
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
                    Task open;
                    lock (_links) open = _open.Task;
                    await open.WaitAsync(ct);
                    await to.SendAsync(bytes, SocketFlags.None, ct);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        });
        var buffer = new byte[64 * 1024];
        var tail = Array.Empty<byte>();
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, ct);
                if (n == 0) break;
                var bytes = buffer[..n];
                // The chunk with the end of what came before, so a pattern split between two reads is found.
                var seen = tail.Concat(bytes).ToArray();
                lock (_links) Inspect(seen, tail.Length, fromClient);
                tail = seen[Math.Max(0, seen.Length - 256)..];
                chunks.Writer.TryWrite((Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency), bytes));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        chunks.Writer.TryComplete();
        await writing;
        if (link.Cut.IsCancellationRequested) return;
        try { to.Shutdown(SocketShutdown.Send); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    // A match must end in the new bytes, after the old ones (the tail of earlier reads) at the start of seen.
    private static bool Contains(byte[] seen, int old, byte[] pattern) =>
        seen.AsSpan(Math.Max(0, old - pattern.Length + 1)).IndexOf(pattern) >= 0;

    private void Inspect(byte[] seen, int old, bool fromClient)
    {
        if (_trigger is not { } t || t.Replies == fromClient || !Contains(seen, old, t.Pattern)) return;
        _trigger = null;
        var stall = StallLocked();
        if (t.Duration != Timeout.InfiniteTimeSpan)
            _ = Task.Delay(t.Duration).ContinueWith(_ => { lock (_links) stall.TrySetResult(); }, TaskScheduler.Default);
        t.Started.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_links)
        {
            foreach (var link in _links) Close(link);
            _links.Clear();
            _open.TrySetResult();
        }
        await _accepting;
    }
}
