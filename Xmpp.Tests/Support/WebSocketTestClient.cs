using System.Net.WebSockets;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// An RFC 7395 client over System.Net.WebSockets with the test server's self-signed certificate accepted: one element
/// per text message, &lt;open/&gt; and &lt;close/&gt; framing.
public sealed class WebSocketTestClient : IAsyncDisposable
{
    private readonly ClientWebSocket _socket = new();

    public Jid? Jid { get; private set; }
    public Element? Features { get; private set; }
    public WebSocketState State => _socket.State;
    public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;

    public static Uri Url(TestServer server) => new($"wss://127.0.0.1:{server.HttpPort}/xmpp-websocket");

    /// Only the WebSocket handshake (subprotocol 'xmpp' unless told otherwise). A preamble (a PROXY protocol header, as a
    /// load balancer sends) is written on the TCP connection before the TLS handshake.
    public static async Task<WebSocketTestClient> ConnectRawAsync(TestServer server, string? origin = null, string? subprotocol = "xmpp",
        byte[]? preamble = null)
    {
        var client = new WebSocketTestClient();
        if (subprotocol is not null) client._socket.Options.AddSubProtocol(subprotocol);
        if (origin is not null) client._socket.Options.SetRequestHeader("Origin", origin);
        if (preamble is null)
        {
            client._socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
            await client._socket.ConnectAsync(Url(server), CancellationToken.None);
            return client;
        }
        var handler = new System.Net.Http.SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
            ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                await stream.WriteAsync(preamble, ct);
                return stream;
            },
        };
        await client._socket.ConnectAsync(Url(server), new System.Net.Http.HttpMessageInvoker(handler), CancellationToken.None);
        return client;
    }

    /// Opens, authenticates with SCRAM-SHA-256, restarts and binds.
    public static async Task<WebSocketTestClient> ConnectAsync(TestServer server, string user, string password, string? resource = null,
        byte[]? preamble = null)
    {
        var client = await ConnectRawAsync(server, preamble: preamble);
        await client.OpenAsync(server.Domain);
        await client.AuthenticateAsync(user, password, server.Domain);
        await client.BindAsync(resource);
        return client;
    }

    /// Sends &lt;open/&gt; and reads the server's &lt;open/&gt; and features.
    public async Task<Element> OpenAsync(string domain)
    {
        await SendAsync($"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{domain}' version='1.0'/>");
        var open = await ReceiveAsync();
        if (!open.Is("open", Ns.Framing)) throw new InvalidOperationException("expected <open/>, got " + open);
        Features = await ReceiveAsync();
        return open;
    }

    public async Task AuthenticateAsync(string user, string password, string domain)
    {
        ScramHashes.TryParseMechanism("SCRAM-SHA-256", out var hash, out _);
        var scram = new ScramClient(hash, user, password, null, serverSupportsPlus: false);
        await SendAsync(new Element("auth", Ns.Sasl).SetAttr("mechanism", "SCRAM-SHA-256").SetText(Convert.ToBase64String(scram.ClientFirst())));
        var challenge = await ReceiveAsync();
        if (!challenge.Is("challenge", Ns.Sasl)) throw new AuthenticationFailedException(challenge);
        await SendAsync(new Element("response", Ns.Sasl).SetText(Convert.ToBase64String(scram.ClientFinal(Convert.FromBase64String(challenge.Text)))));
        var outcome = await ReceiveAsync();
        if (!outcome.Is("success", Ns.Sasl)) throw new AuthenticationFailedException(outcome);
        if (!scram.VerifyServerFinal(Convert.FromBase64String(outcome.Text))) throw new InvalidOperationException("server signature did not verify");
        await OpenAsync(domain);
        Jid = Jid.Create(user, domain);
    }

    public async Task BindAsync(string? resource)
    {
        var bind = new Element("bind", Ns.Bind);
        if (resource is not null) bind.Add(new Element("resource", Ns.Bind).SetText(resource));
        await SendAsync(new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("id", "bind1").Add(bind));
        var result = await ReceiveAsync(e => e.Attr("id") == "bind1");
        Jid = Jid.Parse(result.Child("bind", Ns.Bind)!.ChildText("jid", Ns.Bind)!);
    }

    public Task SendAsync(Element e) => SendAsync(Encoding.UTF8.GetString(ElementWriter.ToBytes(e, "")));

    public Task SendAsync(string xml) => _socket.SendAsync(Encoding.UTF8.GetBytes(xml), WebSocketMessageType.Text, true, CancellationToken.None);

    /// The next message as text; null when the server closed the WebSocket.
    public async Task<string?> ReceiveTextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TestClient.DefaultTimeout);
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close) return null;
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage) return Encoding.UTF8.GetString(message.ToArray());
        }
    }

    public async Task<Element> ReceiveAsync(Func<Element, bool>? match = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TestClient.DefaultTimeout);
        while (true)
        {
            var text = await ReceiveTextAsync(deadline - DateTime.UtcNow) ?? throw new InvalidOperationException("the server closed the WebSocket");
            // Each message must stand alone: parse it with no surrounding stream context.
            var e = ParseStandalone(text);
            if (match is null || match(e)) return e;
        }
    }

    /// Parses with no default namespace in scope, so an element that does not declare its own namespace shows up.
    public static Element ParseStandalone(string xml)
    {
        var parser = new XmppStreamParser();
        var buffer = new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>" + xml));
        parser.Parse(buffer, out var consumed, out _);
        if (parser.Parse(buffer.Slice(consumed), out _, out var element) != XmlItemKind.Element) throw new FormatException("not one complete element: " + xml);
        return element!;
    }

    public async Task CloseSocketAsync()
    {
        if (_socket.State == WebSocketState.Open) await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    public void Abort() => _socket.Abort();

    public ValueTask DisposeAsync()
    {
        _socket.Abort();
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
