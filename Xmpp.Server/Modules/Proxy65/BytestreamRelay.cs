using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Proxy65;

/// The proxy's bytestreams: connections wait here under their DST.ADDR (the SHA-1 of sid, initiator and target) until
/// the initiator activates the pair, then bytes are copied both ways, each direction limited to MaxBytesPerSecond.
public sealed class BytestreamRelay(XmppServerOptions options)
{
    private readonly Dictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private Proxy65Options Options => options.Proxy65;

    public enum Admission { Accepted, TooManySessions, AlreadyPaired }

    /// One connection of a bytestream, waiting until the relay runs and then until both directions have finished.
    public sealed class Waiter
    {
        internal Waiter(ConnectionContext connection) => Connection = connection;
        internal ConnectionContext Connection { get; }
        internal TaskCompletionSource<Task> Relaying { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// Completes with the relay's task when the bytestream is activated.
        public Task<Task> Activated => Relaying.Task;
    }

    private sealed class Session
    {
        public readonly List<Waiter> Waiters = new(2);
        public bool Active;
    }

    /// How many bytestreams are waiting or relaying, for tests and limits.
    public int SessionCount
    {
        get { lock (_sessions) return _sessions.Count; }
    }

    public Admission Join(string address, ConnectionContext connection, out Waiter? waiter)
    {
        waiter = null;
        lock (_sessions)
        {
            if (!_sessions.TryGetValue(address, out var session))
            {
                if (_sessions.Count >= Options.MaxSessions) return Admission.TooManySessions;
                _sessions[address] = session = new Session();
            }
            // XEP-0065 §7: one target per bytestream, no multicasting.
            if (session.Active || session.Waiters.Count >= 2) return Admission.AlreadyPaired;
            waiter = new Waiter(connection);
            session.Waiters.Add(waiter);
            return Admission.Accepted;
        }
    }

    /// A waiting connection gave up (timeout or disconnect) before activation.
    public void Leave(string address, Waiter waiter)
    {
        lock (_sessions)
        {
            if (!_sessions.TryGetValue(address, out var session) || session.Active) return;
            session.Waiters.Remove(waiter);
            if (session.Waiters.Count == 0) _sessions.Remove(address);
        }
    }

    /// Starts relaying when both connections of the bytestream are there; false otherwise.
    public bool Activate(string address)
    {
        Waiter a, b;
        lock (_sessions)
        {
            if (!_sessions.TryGetValue(address, out var session) || session.Active || session.Waiters.Count != 2) return false;
            session.Active = true;
            a = session.Waiters[0];
            b = session.Waiters[1];
        }
        var relay = RunAsync(address, a.Connection.Transport, b.Connection.Transport);
        a.Relaying.TrySetResult(relay);
        b.Relaying.TrySetResult(relay);
        return true;
    }

    private async Task RunAsync(string address, IDuplexPipe a, IDuplexPipe b)
    {
        try
        {
            await Task.WhenAll(CopyAsync(a.Input, b.Output), CopyAsync(b.Input, a.Output));
        }
        finally
        {
            lock (_sessions) _sessions.Remove(address);
        }
    }

    // Bytes sent before activation were left unread (§7: "ignore but not drop"), so they are relayed first. With a rate,
    // bytes go out in slices of a tenth of a second's worth, each only once the bytes before it are due.
    private async Task CopyAsync(PipeReader from, PipeWriter to)
    {
        long rate = Options.MaxBytesPerSecond;
        long sliceMax = rate > 0 ? Math.Max(1024, rate / 10) : long.MaxValue;
        long total = 0;
        var started = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (true)
            {
                var result = await from.ReadAsync();
                var remaining = result.Buffer;
                while (!remaining.IsEmpty)
                {
                    var slice = remaining.Slice(0, Math.Min(remaining.Length, sliceMax));
                    if (rate > 0)
                    {
                        var due = TimeSpan.FromSeconds((double)total / rate) - started.Elapsed;
                        if (due > TimeSpan.Zero) await Task.Delay(due);
                    }
                    foreach (var segment in slice)
                    {
                        var flush = await to.WriteAsync(segment);
                        if (flush.IsCompleted || flush.IsCanceled) return;
                    }
                    total += slice.Length;
                    remaining = remaining.Slice(slice.End);
                }
                from.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled) return;
            }
        }
        catch (Exception e) when (e is IOException or ConnectionResetException or OperationCanceledException or InvalidOperationException)
        {
            // One side went away: the other direction ends as well.
        }
        finally
        {
            await to.CompleteAsync();
            await from.CompleteAsync();
        }
    }
}
