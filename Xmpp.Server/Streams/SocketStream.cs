using System.Net.Sockets;

namespace Xmpp.Server.Streams;

/// A client socket as a Stream for SslStream: NetworkStream (which reads straight from the socket, zero-byte reads
/// included, and reports socket errors as IOException), plus bytes to give back first: what the plain-text reader had
/// buffered when TLS took over. The socket is the transport's to close.
internal sealed class SocketStream(Socket socket) : NetworkStream(socket, ownsSocket: false)
{
    private byte[]? _pending;
    private int _offset;

    /// Bytes read from the socket before TLS started; the next reads return them before anything from the socket.
    public void Unread(byte[] bytes)
    {
        _pending = bytes;
        _offset = 0;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _pending is null ? base.ReadAsync(buffer, cancellationToken) : new ValueTask<int>(ReadPending(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _pending is null ? base.ReadAsync(buffer, offset, count, cancellationToken) : Task.FromResult(ReadPending(buffer.AsSpan(offset, count)));

    public override int Read(Span<byte> buffer) => _pending is null ? base.Read(buffer) : ReadPending(buffer);

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override IAsyncResult BeginRead(byte[] buffer, int offset, int count, AsyncCallback? callback, object? state) =>
        TaskToAsyncResult.Begin(ReadAsync(buffer, offset, count, CancellationToken.None), callback, state);

    public override int EndRead(IAsyncResult asyncResult) => TaskToAsyncResult.End<int>(asyncResult);

    /// A zero-byte read (SslStream waiting for data without a buffer) returns at once: the data is there.
    private int ReadPending(Span<byte> buffer)
    {
        var pending = _pending!;
        int n = Math.Min(buffer.Length, pending.Length - _offset);
        pending.AsSpan(_offset, n).CopyTo(buffer);
        _offset += n;
        if (_offset == pending.Length) _pending = null;
        return n;
    }
}
