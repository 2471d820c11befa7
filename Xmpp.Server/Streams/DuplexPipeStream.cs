using System.Buffers;
using System.IO.Pipelines;

namespace Xmpp.Server.Streams;

/// A Stream over a connection's pipes, so SslStream can run on top of Kestrel's transport after STARTTLS.
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    /// SslStream reads every record through here. PipeReader.AsStream's reader allocated a new state machine for each
    /// read that had to wait (~74 B per routed message); this one's boxes are pooled. A zero-byte read (SslStream's
    /// way of waiting for data without a buffer) completes once bytes are there, without consuming them.
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        var reader = pipe.Input;
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var data = result.Buffer;
            if (result.IsCanceled)
            {
                reader.AdvanceTo(data.Start);
                throw new OperationCanceledException("The read was cancelled");
            }
            if (!data.IsEmpty)
            {
                if (buffer.Length == 0)
                {
                    reader.AdvanceTo(data.Start);
                    return 0;
                }
                int n = (int)Math.Min(data.Length, buffer.Length);
                data.Slice(0, n).CopyTo(buffer.Span);
                reader.AdvanceTo(data.GetPosition(n));
                return n;
            }
            reader.AdvanceTo(data.End);
            if (result.IsCompleted) return 0;
        }
    }
    public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => _output.WriteAsync(buffer, ct);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => _output.WriteAsync(buffer, offset, count, ct);
    public override void Flush() => _output.Flush();
    public override Task FlushAsync(CancellationToken ct) => _output.FlushAsync(ct);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
