using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Http;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Http.WebClients;

/// The transport an XmppStream sees when its bytes travel in WebSocket messages or BOSH bodies: a pair of in-memory
/// pipes. The transport writes the client's data into ClientInput and reads the stream's output from ServerOutput;
/// the stream itself runs exactly as on TCP.
internal sealed class FramedConnection : IStreamTransport
{
    private readonly Pipe _toStream = new();
    private readonly Pipe _fromStream = new();

    public FramedConnection(HttpContext http)
    {
        if (http.Connection.RemoteIpAddress is { } ip) RemoteEndPoint = new IPEndPoint(ip, http.Connection.RemotePort);
    }

    public EndPoint? RemoteEndPoint { get; }
    public PipeReader Input => _toStream.Reader;
    public PipeWriter Output => _fromStream.Writer;

    /// Where the transport puts what the client sent.
    public PipeWriter ClientInput => _toStream.Writer;

    /// What the stream wrote for the client.
    public PipeReader ServerOutput => _fromStream.Reader;

    /// STARTTLS inside the framing (plain HTTP only): TLS runs over the same pipes, which keep what is unread.
    public Stream TakeForTls() => new DuplexPipeStream(new DuplexPipe(Input, Output));

    public void Abort()
    {
        _toStream.Writer.Complete();
        _fromStream.Reader.CancelPendingRead();
    }

    /// The stream's run ended: nothing more will be written for the client.
    public void Close() => _fromStream.Writer.Complete();

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
