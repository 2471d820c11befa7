using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace Xmpp.Server.Streams;

/// One accepted client socket of the c2s listener. Before TLS, pipes over the socket (created when first used, and
/// reading with zero-byte reads, so a connection waiting for its first bytes holds no buffer); for TLS the socket's
/// stream itself, with nothing in between (issue 18: Kestrel's transport pipes and the adapters between them and
/// SslStream cost ~3 KiB per idle connection).
internal sealed class SocketTransport : IStreamTransport
{
    private static readonly StreamPipeReaderOptions ReaderOptions =
        new(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true);
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 4096, leaveOpen: true);

    private readonly Socket _socket;
    private readonly SocketStream _stream;
    private readonly C2sListener _listener;
    private PipeReader? _input;
    private PipeWriter? _output;
    private int _socketClosed;
    private int _closed;

    public SocketTransport(Socket socket, C2sListener listener)
    {
        _socket = socket;
        _stream = new SocketStream(socket);
        _listener = listener;
        RemoteEndPoint = socket.RemoteEndPoint;
    }

    public EndPoint? RemoteEndPoint { get; set; }

    public PipeReader Input => _input ??= PipeReader.Create(_stream, ReaderOptions);

    public PipeWriter Output => _output ??= PipeWriter.Create(_stream, WriterOptions);

    public Stream TakeForTls()
    {
        if (_input is { } input)
        {
            // TryRead hands over what is buffered without reading the socket; examined or not, nothing is lost.
            if (input.TryRead(out var read))
            {
                if (!read.Buffer.IsEmpty) _stream.Unread(read.Buffer.ToArray());
                input.AdvanceTo(read.Buffer.End);
            }
            input.Complete();
            _input = null;
        }
        if (_output is { } output)
        {
            // Everything before TLS (<proceed/> last) was flushed; the exception only says not to write anything now.
            output.Complete(new ObjectDisposedException(nameof(SocketTransport)));
            _output = null;
        }
        return _stream;
    }

    /// As Kestrel's socket transport ends a connection: shutdown both ways (FIN, after what is in the socket's send
    /// buffer), then close; pending reads and writes fail with an IOException.
    public void Abort()
    {
        if (Interlocked.Exchange(ref _socketClosed, 1) != 0) return;
        // Not after a send or receive failed (a peer that reset or closed): shutdown would fail with ENOTCONN, an
        // exception per logout for nothing.
        if (_socket.Connected)
        {
            try { _socket.Shutdown(SocketShutdown.Both); }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        }
        _socket.Dispose();
    }

    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        Abort();
        // Their segments go back to the pool; the exception keeps the writer from writing to the closed socket.
        _input?.Complete();
        _output?.Complete(new ObjectDisposedException(nameof(SocketTransport)));
        _stream.Dispose();
        _listener.Closed();
    }
}
