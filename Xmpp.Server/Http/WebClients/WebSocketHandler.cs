using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Http.WebClients;

/// RFC 7395 XMPP over WebSocket on /xmpp-websocket: each text message is one element, &lt;open/&gt; and &lt;close/&gt;
/// stand for the stream header and end; everything else is the TCP stream logic (FramedStream).
internal sealed class WebSocketHandler(StreamServices services, XmppServerOptions options, ILogger<WebSocketHandler> logger) : IHttpHandler
{
    public static readonly PathString Path = "/xmpp-websocket";
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(5);

    public PathString PathPrefix => Path;

    public async Task HandleAsync(HttpContext context)
    {
        if (!options.Http.WebSocket || context.Request.Path != Path)
        {
            context.Response.StatusCode = (int)HttpStatusCode.NotFound;
            return;
        }
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = (int)HttpStatusCode.UpgradeRequired;
            context.Response.Headers.Upgrade = "websocket";
            return;
        }
        if (!OriginPolicy.Allows(context, options.Http))
        {
            context.Response.StatusCode = (int)HttpStatusCode.Forbidden;
            return;
        }
        // RFC 7395 §3.1: the connection is XMPP only when both sides agree on the 'xmpp' subprotocol.
        if (!context.WebSockets.WebSocketRequestedProtocols.Contains("xmpp"))
        {
            context.Response.StatusCode = (int)HttpStatusCode.BadRequest;
            await context.Response.WriteAsync("Ask for the 'xmpp' WebSocket subprotocol (RFC 7395 §3.1)");
            return;
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync("xmpp");
        var framed = new FramedStream(context, services);
        framed.Start();
        var sending = SendLoopAsync(socket, framed);
        bool clean = await ReceiveLoopAsync(socket, framed);
        if (clean) framed.InputEnded();
        else if (await Task.WhenAny(framed.Completion, Task.Delay(CloseGrace)) != framed.Completion) framed.InputEnded();
        await framed.Completion;
        await Task.WhenAny(sending, Task.Delay(CloseGrace));
        // Closing with unread input would reset the TCP connection and could destroy the <close/> not yet read by
        // the client: wait for the client's close frame (RFC 6455 §7.1.1) for a while.
        if (!clean) await DrainAsync(socket);
        if (socket.State is not (WebSocketState.Closed or WebSocketState.Aborted)) socket.Abort();
    }

    /// Sends each item of the stream's output as one text message; the stream's end as &lt;close/&gt;.
    private async Task SendLoopAsync(WebSocket socket, FramedStream framed)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        try
        {
            await framed.PumpAsync(async (kind, item) =>
            {
                buffer.ResetWrittenCount();
                switch (kind)
                {
                    case XmlItemKind.StreamHeader: buffer.Write(FramingWriter.Open(item!)); break;
                    case XmlItemKind.StreamEnd: buffer.Write(FramingWriter.Close); break;
                    default: FramingWriter.Write(buffer, item!); break;
                }
                await socket.SendAsync(buffer.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            }, CancellationToken.None);
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(CloseGrace);
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
            }
        }
        catch (Exception ex)
        {
            logger.LogWarning("WebSocket send to {Ip} ended: {Message}", framed.Stream.RemoteAddress, ex.Message);
            socket.Abort();
        }
    }

    private static async Task DrainAsync(WebSocket socket)
    {
        var scratch = new byte[1024];
        using var timeout = new CancellationTokenSource(CloseGrace);
        try
        {
            while (socket.State is WebSocketState.Open or WebSocketState.CloseSent)
                if ((await socket.ReceiveAsync(scratch, timeout.Token)).MessageType == WebSocketMessageType.Close) return;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// Passes each message to the stream; true when the client went away, false when the stream was failed here.
    private async Task<bool> ReceiveLoopAsync(WebSocket socket, FramedStream framed)
    {
        var message = new ArrayBufferWriter<byte>(4096);
        var limits = services.ParserLimits;
        var gateway = new MessageParser(limits);
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(message.GetMemory(4096), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close) return true;
                message.Advance(result.Count);
                if (message.WrittenCount > limits.MaxStanzaBytes + 1024)
                    throw new XmppStreamException(StreamErrors.PolicyViolation, $"A message may hold at most {limits.MaxStanzaBytes} bytes");
                if (!result.EndOfMessage) continue;
                // RFC 7395 §3.2: XMPP travels in UTF-8 text messages.
                if (result.MessageType != WebSocketMessageType.Text)
                    throw new XmppStreamException(StreamErrors.UnsupportedEncoding, "Send XMPP in WebSocket text messages");
                await ForwardAsync(framed, gateway.Parse(message.WrittenMemory));
                message.ResetWrittenCount();
            }
        }
        catch (XmppStreamException ex)
        {
            framed.Stream.CloseWithError(ex.Condition, ex.Text);
            return false;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            return true;
        }
    }

    private static async ValueTask ForwardAsync(FramedStream framed, List<Element> elements)
    {
        var pending = new List<Element>(elements.Count);
        foreach (var e in elements)
        {
            if (e.Namespace == Ns.Framing && e.Name is "open" or "close" && (e.Name == "close" || framed.AwaitingHeader))
            {
                if (pending.Count > 0) await framed.SendAsync(pending);
                pending.Clear();
                if (e.Name == "open") await framed.OpenAsync(e.Attr);
                else await framed.CloseAsync();
            }
            else pending.Add(e);
        }
        if (pending.Count > 0) await framed.SendAsync(pending);
    }
}
