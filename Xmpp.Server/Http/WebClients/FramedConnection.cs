using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Xmpp.Server.Http.WebClients;

/// The connection an XmppStream sees when its bytes travel in WebSocket messages or BOSH bodies: a pair of in-memory
/// pipes. The transport writes the client's data into ClientInput and reads the stream's output from ServerOutput;
/// the stream itself runs exactly as on TCP.
internal sealed class FramedConnection : ConnectionContext
{
    private readonly Pipe _toStream = new();
    private readonly Pipe _fromStream = new();
    private readonly CancellationTokenSource _aborted = new();

    public FramedConnection(HttpContext http)
    {
        ConnectionId = http.Connection.Id + "/" + Guid.NewGuid().ToString("N")[..8];
        if (http.Connection.RemoteIpAddress is { } ip) RemoteEndPoint = new IPEndPoint(ip, http.Connection.RemotePort);
        Transport = new DuplexPipe(_toStream.Reader, _fromStream.Writer);
    }

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; } = new FeatureCollection();
    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    public override IDuplexPipe Transport { get; set; }
    public override CancellationToken ConnectionClosed { get => _aborted.Token; set { } }

    /// Where the transport puts what the client sent.
    public PipeWriter ClientInput => _toStream.Writer;

    /// What the stream wrote for the client.
    public PipeReader ServerOutput => _fromStream.Reader;

    /// The stream's run ended: nothing more will be written for the client.
    public void StreamEnded() => _fromStream.Writer.Complete();

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _toStream.Writer.Complete();
        _fromStream.Reader.CancelPendingRead();
        try { _aborted.Cancel(); } catch (ObjectDisposedException) { }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
