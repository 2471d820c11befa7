using System.Buffers;
using Microsoft.AspNetCore.Http;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Http.WebClients;

/// An XmppStream behind a framed transport (WebSocket messages, BOSH bodies): the transport hands it whole client
/// elements and receives whole items back. Negotiation, SASL, binding and stream management are the TCP code.
internal sealed class FramedStream
{
    private static readonly byte[] StreamEndTag = "</stream:stream>"u8.ToArray();
    private readonly FramedConnection _connection;
    private readonly SemaphoreSlim _inputGate = new(1, 1);
    private Task? _run;

    public FramedStream(HttpContext http, StreamServices services)
    {
        _connection = new FramedConnection(http);
        // The HTTPS layer did TLS, so the stream is encrypted and never offers STARTTLS (RFC 7395 §3.1 uses wss:, XEP-0206 §15 https:).
        Stream = new XmppStream(_connection, services, directTls: false, transportSecure: http.Request.IsHttps, web: true);
        Output = new StreamOutputReader(_connection.ServerOutput);
    }

    public XmppStream Stream { get; }
    public StreamOutputReader Output { get; }

    /// True until the client's opening (or restart) has been passed on; again after SASL success (RFC 6120 §6.4.6).
    public bool AwaitingHeader
    {
        get => Volatile.Read(ref _awaitingHeader);
        private set => Volatile.Write(ref _awaitingHeader, value);
    }

    private bool _awaitingHeader = true;

    public Task Completion => _run ?? Task.CompletedTask;

    /// The stream closes its transport (FramedConnection.Close) when its run ends.
    public void Start() => _run = Stream.RunAsync();

    /// Reads the stream's output item by item; a SASL success means the client opens a new stream next.
    public Task PumpAsync(Func<XmlItemKind, Element?, ValueTask> onItem, CancellationToken ct) =>
        Output.PumpAsync((kind, item) =>
        {
            if (kind == XmlItemKind.Element && item!.Is("success", Ns.Sasl)) AwaitingHeader = true;
            return onItem(kind, item);
        }, ct);

    /// Opens (or restarts) the stream with the attributes a client gave in &lt;open/&gt; or a BOSH body.
    public async ValueTask OpenAsync(Func<string, string?> attribute)
    {
        await _inputGate.WaitAsync();
        try
        {
            AwaitingHeader = false;
            await WriteAsync(FramingWriter.StreamHeader(attribute));
        }
        finally { _inputGate.Release(); }
    }

    public async ValueTask SendAsync(IEnumerable<Element> elements)
    {
        await _inputGate.WaitAsync();
        try
        {
            foreach (var e in elements) e.WriteTo(_connection.ClientInput, Ns.Client);
            await _connection.ClientInput.FlushAsync();
        }
        catch (InvalidOperationException)
        {
            // The stream already ended: there is no one left to read it.
        }
        finally { _inputGate.Release(); }
    }

    /// The client closed its stream (RFC 7395 §3.6 &lt;close/&gt;; XEP-0124 §13 terminate).
    public async ValueTask CloseAsync()
    {
        await _inputGate.WaitAsync();
        try { await WriteAsync(StreamEndTag); }
        finally { _inputGate.Release(); }
    }

    /// The transport is gone (socket closed, BOSH session expired): the stream sees end of input.
    public void InputEnded() => _connection.ClientInput.Complete();

    private async ValueTask WriteAsync(byte[] bytes)
    {
        try
        {
            _connection.ClientInput.Write(bytes);
            await _connection.ClientInput.FlushAsync();
        }
        catch (InvalidOperationException)
        {
        }
    }
}
