using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using Xmpp.Server.Streams;

namespace Xmpp.Tests.Support;

/// The c2s listener's connections with their socket writes counted: before TLS each flush of the output pipe that
/// holds data, after it each write SslStream makes to the socket's stream. A test sees how many writes a step of the
/// protocol took without racing the wire. Attach after the server started and before the client connects.
public sealed class CountingTransport
{
    public ConcurrentQueue<ConnectionWrites> Connections { get; } = new();

    public static CountingTransport Attach(TestServer server)
    {
        var counting = new CountingTransport();
        server.Get<C2sListener>().WrapTransport = transport =>
        {
            var counted = new ConnectionWrites(transport);
            counting.Connections.Enqueue(counted);
            return counted;
        };
        return counting;
    }

    /// One connection's transport, passing everything through and counting writes.
    public sealed class ConnectionWrites(IStreamTransport inner) : IStreamTransport
    {
        private int _flushes;
        private CountingWriter? _output;

        public int Flushes => Volatile.Read(ref _flushes);
        public EndPoint? RemoteEndPoint => inner.RemoteEndPoint;
        public PipeReader Input => inner.Input;
        public PipeWriter Output => _output ??= new CountingWriter(inner.Output, this);
        public Stream TakeForTls() => new CountingStream(inner.TakeForTls(), this);
        public void Abort() => inner.Abort();
        public void Close() => inner.Close();

        internal void Counted() => Interlocked.Increment(ref _flushes);
    }

    private sealed class CountingWriter(PipeWriter inner, ConnectionWrites owner) : PipeWriter
    {
        private long _unflushed;

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
            if (_unflushed > 0) owner.Counted();
            _unflushed = 0;
            return inner.FlushAsync(ct);
        }
    }

    private sealed class CountingStream(Stream inner, ConnectionWrites owner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => inner.ReadAsync(buffer, ct);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => inner.ReadAsync(buffer, offset, count, ct);
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            if (!buffer.IsEmpty) owner.Counted();
            return inner.WriteAsync(buffer, ct);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (count > 0) owner.Counted();
            inner.Write(buffer, offset, count);
        }

        public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);
        public override void Flush() => inner.Flush();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
