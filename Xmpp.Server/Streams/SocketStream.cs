using System.Net.Sockets;

namespace Xmpp.Server.Streams;

/// A client socket as a Stream for SslStream: NetworkStream (which reads straight from the socket, zero-byte reads
/// included), plus bytes to give back first: what the plain-text reader had buffered when TLS took over. The socket is
/// the transport's to close.
/// Reads with a buffer and writes first try the non-blocking socket call, which reports an error as a code: most
/// complete at once, with no asynchronous operation (and no send state kept on an idle socket), and a peer that reset
/// costs one ordinary exception. NetworkStream's asynchronous calls build theirs with the stack trace as text
/// (ExceptionDispatchInfo.SetCurrentStackTrace), which took 13 % of the server's CPU in a login benchmark where every
/// client closes at once, as the generator's do. Only what would block goes asynchronous.
internal sealed class SocketStream : NetworkStream
{
    private readonly Socket _socket;
    private byte[]? _pending;
    private int _offset;

    public SocketStream(Socket socket) : base(socket, ownsSocket: false)
    {
        _socket = socket;
        socket.Blocking = false; // after the base constructor, which refuses a non-blocking socket
    }

    /// Bytes read from the socket before TLS started; the next reads return them before anything from the socket.
    public void Unread(byte[] bytes)
    {
        _pending = bytes;
        _offset = 0;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pending is not null) return new ValueTask<int>(ReadPending(buffer.Span));
        // A zero-byte read waits for data without a buffer: that one is asynchronous by nature.
        if (buffer.IsEmpty) return base.ReadAsync(buffer, cancellationToken);
        int n = _socket.Receive(buffer.Span, SocketFlags.None, out var error);
        return error switch
        {
            SocketError.Success => new ValueTask<int>(n), // 0: the peer closed
            SocketError.WouldBlock => base.ReadAsync(buffer, cancellationToken),
            _ => ValueTask.FromException<int>(Failure("read from", error)),
        };
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            int n = _socket.Send(buffer.Span, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock) return base.WriteAsync(buffer, cancellationToken); // the send buffer is full
            if (error != SocketError.Success) return ValueTask.FromException(Failure("write to", error));
            buffer = buffer[n..];
        }
        return default;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private static IOException Failure(string what, SocketError error) =>
        new($"Unable to {what} the transport connection: {error}.", new SocketException((int)error));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

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
