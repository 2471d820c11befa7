using System.IO.Pipelines;
using System.Net;

namespace Xmpp.Server.Streams;

/// What an XmppStream runs on: a client socket of the c2s listener (SocketTransport) or the WebSocket and BOSH
/// framing (FramedConnection). Before TLS the stream reads Input and writes Output; STARTTLS and direct TLS then take
/// the raw byte stream once (TakeForTls) and run SslStream on it, and Input and Output are not used again.
public interface IStreamTransport
{
    /// The peer's address: the socket's, or the client's from a trusted PROXY protocol header.
    EndPoint? RemoteEndPoint { get; }

    PipeReader Input { get; }

    PipeWriter Output { get; }

    /// The byte stream for SslStream. Bytes Input has buffered but nobody consumed (a ClientHello sent right after
    /// &lt;starttls/&gt;, or one the ACME responder looked at) are read from it first.
    Stream TakeForTls();

    /// Cuts the connection now, from any thread (a peer that stopped reading): pending reads and writes fail.
    void Abort();

    /// The stream's run has ended: the connection is closed. Called once, by the stream's own task.
    void Close();
}
