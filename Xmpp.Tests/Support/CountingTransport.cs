using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Xmpp.Tests.Support;

/// Kestrel's socket transport with every accepted connection's output wrapped to count flushes: each flush is one
/// write to the socket, so a test sees how many writes a step of the protocol took without racing the wire.
/// Register with TestServer.StartAsync(services: CountingTransport.Register(out var transport)).
public sealed class CountingTransport : IConnectionListenerFactory
{
    private readonly SocketTransportFactory _inner;
    public ConcurrentQueue<CountingWriter> Connections { get; } = new();

    private CountingTransport(SocketTransportFactory inner) => _inner = inner;

    public static Action<IServiceCollection> Register(out Func<CountingTransport> transport)
    {
        CountingTransport? created = null;
        transport = () => created ?? throw new InvalidOperationException("the server did not use the counting transport");
        return services => services.AddSingleton<IConnectionListenerFactory>(sp => created = new CountingTransport(
            new SocketTransportFactory(sp.GetRequiredService<IOptions<SocketTransportOptions>>(), sp.GetRequiredService<ILoggerFactory>())));
    }

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken ct = default) =>
        new Listener(await _inner.BindAsync(endpoint, ct), this);

    private sealed class Listener(IConnectionListener inner, CountingTransport owner) : IConnectionListener
    {
        public EndPoint EndPoint => inner.EndPoint;
        public ValueTask UnbindAsync(CancellationToken ct = default) => inner.UnbindAsync(ct);
        public ValueTask DisposeAsync() => inner.DisposeAsync();

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken ct = default)
        {
            var connection = await inner.AcceptAsync(ct);
            if (connection is null) return null;
            var writer = new CountingWriter(connection.Transport.Output);
            owner.Connections.Enqueue(writer);
            return new Connection(connection, new Pipe(connection.Transport.Input, writer));
        }
    }

    private sealed record Pipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private sealed class Connection(ConnectionContext inner, IDuplexPipe transport) : ConnectionContext
    {
        public override IDuplexPipe Transport { get => transport; set => throw new NotSupportedException(); }
        public override string ConnectionId { get => inner.ConnectionId; set => inner.ConnectionId = value; }
        public override IFeatureCollection Features => inner.Features;
        public override IDictionary<object, object?> Items { get => inner.Items; set => inner.Items = value; }
        public override EndPoint? LocalEndPoint { get => inner.LocalEndPoint; set => inner.LocalEndPoint = value; }
        public override EndPoint? RemoteEndPoint { get => inner.RemoteEndPoint; set => inner.RemoteEndPoint = value; }
        public override CancellationToken ConnectionClosed { get => inner.ConnectionClosed; set => inner.ConnectionClosed = value; }
        public override void Abort(ConnectionAbortedException reason) => inner.Abort(reason);
        public override void Abort() => inner.Abort();
        public override ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// A connection's output that counts the flushes (socket writes) holding data.
    public sealed class CountingWriter(PipeWriter inner) : PipeWriter
    {
        private long _unflushed;
        private int _flushes;
        public int Flushes => Volatile.Read(ref _flushes);

        public override void Advance(int bytes)
        {
            _unflushed += bytes;
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;
        public override long UnflushedBytes => inner.UnflushedBytes;

        public override ValueTask<FlushResult> FlushAsync(CancellationToken ct = default)
        {
            if (_unflushed > 0) Interlocked.Increment(ref _flushes);
            _unflushed = 0;
            return inner.FlushAsync(ct);
        }
    }
}
