using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams;

/// One client connection: the RFC 6120 negotiation state machine (header → TLS → SASL → bind → established),
/// then the established session's inbound stanzas. The read loop runs on one task; output before binding is
/// written by that task, afterwards by the writer loop (XmppStream.Output.cs).
public sealed partial class XmppStream
{
    private readonly StreamServices _s;
    private readonly IStreamTransport _transport;
    private readonly bool _directTls;
    private readonly XmppStreamParser _parser;
    private readonly CancellationTokenSource _cts = new();
    private PipeReader _input;
    private PipeWriter _output;
    private SslStream? _ssl;
    private StreamState _state = StreamState.AwaitingHeader;
    private bool _headerSent;
    private string _domain;
    private string _streamId = "";
    private string? _rejectReason;
    private string? _username;
    private ClientSession? _session;
    private long _lastReadTicks;
    private double _readTokens;
    private long _readTokensAt;

    private readonly bool _transportSecure;
    private readonly bool _web;

    /// transportSecure: the connection already runs inside TLS that is not ours (WebSocket and BOSH over HTTPS),
    /// so the stream counts as encrypted and offers no STARTTLS.
    public XmppStream(IStreamTransport transport, StreamServices services, bool directTls, bool transportSecure = false, bool web = false)
    {
        _transportSecure = transportSecure;
        _web = web;
        _s = services;
        _transport = transport;
        _directTls = directTls;
        _input = transport.Input;
        _output = transport.Output;
        _parser = new XmppStreamParser(services.ParserLimits);
        _domain = services.Domains.Default;
        RemoteAddress = transport.RemoteEndPoint is IPEndPoint ip
            ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString()
            : transport.RemoteEndPoint?.ToString() ?? "unknown";
        ConnectedAt = services.Time.GetUtcNow();
        _lastReadTicks = Environment.TickCount64;
        _readTokens = services.Options.Limits.ReadBurstBytes;
        _readTokensAt = Environment.TickCount64;
    }

    public string RemoteAddress { get; }
    public DateTimeOffset ConnectedAt { get; }
    public bool IsSecure => _ssl is not null || _transportSecure;
    internal SslStream? TlsStream => _ssl;
    public StreamState State => _state;
    internal IStreamTransport Connection => _transport;
    public ClientSession? Session => _session;
    public long MillisecondsSinceRead => Environment.TickCount64 - Interlocked.Read(ref _lastReadTicks);
    public string Domain => _domain;

    /// How the client reached us, for metrics: "starttls", "direct-tls" (XEP-0368) or "web" (WebSocket and BOSH).
    public string Transport => _web ? "web" : _directTls ? "direct-tls" : "starttls";

    public async Task RunAsync()
    {
        try
        {
            if (!_s.Connections.TryAdd(this, _s.Options.Limits.MaxConnectionsPerIp))
            {
                _rejectReason = "Too many connections from your address";
                // Direct TLS: closed before the handshake, so a flood of connections costs no TLS work. (On STARTTLS
                // the stream error comes at the header, before any TLS.)
                if (_directTls) return;
            }
            if (_directTls && !await StartTlsAsync(["xmpp-client"])) return;
            await ReadLoopAsync();
        }
        catch (XmppStreamException ex)
        {
            await FailAsync(ex.Condition, ex.Text);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException
                                       or ConnectionAbortedException or ObjectDisposedException or AuthenticationFailureException)
        {
            if (_pendingError is { } pending) await FailAsync(pending.Condition, pending.Text);
        }
        catch (Exception ex)
        {
            _s.Logger.LogError(ex, "Stream from {Ip} failed", RemoteAddress);
            await FailAsync(StreamErrors.InternalServerError, null);
        }
        finally
        {
            try { await CleanupAsync(); }
            finally { _transport.Close(); }
        }
    }

    private sealed class AuthenticationFailureException(string message) : Exception(message);

    private async Task ReadLoopAsync()
    {
        while (true)
        {
            var result = await _input.ReadAsync(_cts.Token);
            if (result.IsCanceled)
            {
                if (_pendingError is { } pending) await FailAsync(pending.Condition, pending.Text);
                return;
            }
            var buffer = result.Buffer;
            long length = buffer.Length;
            Interlocked.Exchange(ref _lastReadTicks, Environment.TickCount64);
            var action = StreamAction.Continue;
            try
            {
                while (true)
                {
                    var kind = _parser.Parse(buffer, out var consumed, out var item);
                    buffer = buffer.Slice(consumed);
                    if (kind == XmlItemKind.NeedMoreData) break;
                    action = await HandleItemAsync(kind, item);
                    if (action != StreamAction.Continue) break;
                }
            }
            finally
            {
                // Before TLS, what follows <starttls/> is left unexamined: a ClientHello sent without waiting for
                // <proceed/> is already here, and the next read (SkipWhitespaceAsync) must return it, not wait for more.
                _input.AdvanceTo(buffer.Start, action == StreamAction.StartTls ? buffer.Start : buffer.End);
            }
            switch (action)
            {
                case StreamAction.Stop:
                    return;
                case StreamAction.StartTls:
                    if (!await StartTlsAsync(null)) return;
                    continue;
            }
            if (result.IsCompleted)
            {
                if (_parser.StanzaBytesSoFar > 0)
                    _s.Logger.LogDebug("Connection from {Ip} ended in the middle of a stanza; the partial stanza is discarded", RemoteAddress);
                return;
            }
            // Most reads end between stanzas: an idle connection then waits without the parser's token buffer.
            _parser.ReleaseBuffer();
            await ThrottleReadAsync(length);
        }
    }

    /// Token bucket over bytes read: a peer above the sustained rate is slowed down, never dropped for it.
    private async ValueTask ThrottleReadAsync(long bytes)
    {
        var limits = _s.Options.Limits;
        if (limits.ReadBytesPerSecond <= 0) return;
        long now = Environment.TickCount64;
        _readTokens = Math.Min(limits.ReadBurstBytes, _readTokens + (now - _readTokensAt) * limits.ReadBytesPerSecond / 1000.0);
        _readTokensAt = now;
        _readTokens -= bytes;
        if (_readTokens < 0)
        {
            var wait = TimeSpan.FromSeconds(-_readTokens / limits.ReadBytesPerSecond);
            await Task.Delay(wait, _cts.Token);
        }
    }

    private enum StreamAction { Continue, Stop, StartTls }

    private async ValueTask<StreamAction> HandleItemAsync(XmlItemKind kind, Element? item)
    {
        switch (kind)
        {
            case XmlItemKind.StreamHeader:
                return await HandleHeaderAsync(item!);
            case XmlItemKind.StreamEnd:
                await CloseGracefullyAsync();
                return StreamAction.Stop;
        }
        var e = item!;
        switch (_state)
        {
            case StreamState.Negotiating:
                return await HandleNegotiationElementAsync(e);
            case StreamState.Authenticated:
                if (e.Is("iq", Ns.Client) && e.Child("bind", Ns.Bind) is { } bind)
                {
                    await HandleBindAsync(e, bind);
                    return StreamAction.Continue;
                }
                if (e.Namespace == Ns.StreamManagement) return await HandleStreamManagementBeforeBindAsync(e);
                throw new XmppStreamException(StreamErrors.NotAuthorized, "Bind a resource before sending stanzas");
            case StreamState.Bound:
                await HandleStanzaAsync(e);
                // XEP-0198 §4: a stanza counts as handled once it has been routed (awaited above).
                if (e.Namespace == Ns.Client) _session!.StreamManagement?.CountHandled();
                return StreamAction.Continue;
            default:
                throw new XmppStreamException(StreamErrors.NotAuthorized);
        }
    }

    // ---- Stream header (RFC 6120 §4.7, §4.8) ----

    private async ValueTask<StreamAction> HandleHeaderAsync(Element header)
    {
        var to = header.Attr("to");
        string? toDomain = null;
        if (to is not null && Jid.TryParse(to, out var toJid) && toJid.IsDomain) toDomain = toJid.Domain;
        if (toDomain is not null && _s.Domains.Contains(toDomain)) _domain = toDomain;
        _streamId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        // The header waits in the output for the features (or the stream error) and goes out in the same flush: one
        // write, one packet per stream (re)start; some clients (tsung) misread a header and features split in two.
        WriteStreamHeader(header.Attr("from"));
        _headerSent = true;

        if (header.Attr("xmlns") != Ns.Client)
            throw new XmppStreamException(StreamErrors.InvalidNamespace, "The content namespace must be jabber:client");
        if (header.Attr("xmlns:stream") != Ns.Streams)
            throw new XmppStreamException(StreamErrors.BadNamespacePrefix, "The streams namespace must use the prefix 'stream'");
        var version = header.Attr("version");
        if (version is null || !version.StartsWith("1.", StringComparison.Ordinal))
            throw new XmppStreamException(StreamErrors.UnsupportedVersion, "This server speaks XMPP 1.0");
        if (to is null && _state == StreamState.AwaitingHeader && _s.Domains.All.Count > 1)
            throw new XmppStreamException(StreamErrors.HostUnknown, "Say which domain you want in the 'to' attribute");
        if (to is not null && (toDomain is null || !_s.Domains.Contains(toDomain)))
            throw new XmppStreamException(StreamErrors.HostUnknown, $"This server does not serve {to}");
        if (_rejectReason is not null)
            throw new XmppStreamException(StreamErrors.PolicyViolation, _rejectReason);

        if (_state == StreamState.AwaitingHeader) _state = StreamState.Negotiating;
        await WriteDirectAsync(BuildFeatures());
        return StreamAction.Continue;
    }

    private void WriteStreamHeader(string? clientFrom)
    {
        var w = _output;
        w.Write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='"u8);
        ElementWriter.WriteRaw(w, _streamId);
        w.Write("' from='"u8);
        ElementWriter.WriteEscaped(w, _domain, attribute: true);
        // RFC 6120 §4.7.2: the response's 'to' echoes a valid 'from' of the initiating entity.
        if (clientFrom is not null && Jid.TryParse(clientFrom, out var cf))
        {
            w.Write("' to='"u8);
            ElementWriter.WriteEscaped(w, cf.ToString(), attribute: true);
        }
        w.Write("' version='1.0' xml:lang='en'>"u8);
    }

    // ---- Elements while negotiating (RFC 6120 §5, §6, XEP-0077) ----

    private async ValueTask<StreamAction> HandleNegotiationElementAsync(Element e)
    {
        if (e.Namespace == Ns.Tls && e.Name == "starttls")
        {
            if (IsSecure || _s.Options.C2sPort == 0 && !_directTls)
            {
                await WriteDirectAsync(new Element("failure", Ns.Tls));
                await CloseGracefullyAsync();
                return StreamAction.Stop;
            }
            await WriteDirectAsync(new Element("proceed", Ns.Tls));
            return StreamAction.StartTls;
        }
        if (!IsSecure && _s.Options.RequireEncryption)
        {
            if (e.Namespace == Ns.Sasl && e.Name == "auth")
            {
                // RFC 6120 §6.5.3: the mechanism cannot be used without TLS.
                await WriteDirectAsync(SaslFailure("encryption-required", "Use STARTTLS first"));
                return StreamAction.Continue;
            }
            throw new XmppStreamException(StreamErrors.PolicyViolation, "STARTTLS is required on this server");
        }
        if (_sasl2 is not null && _auth is { InProgress: true } && !(e.Namespace == Ns.Sasl2 && e.Name is "response" or "abort"))
        {
            // XEP-0388 §2.5: during authentication only responses or an abort may be sent.
            throw new XmppStreamException(StreamErrors.PolicyViolation, "Only <response/> or <abort/> while authenticating");
        }
        if (e.Namespace == Ns.Sasl)
        {
            return await HandleSaslAsync(e);
        }
        if (e.Namespace == Ns.Sasl2)
        {
            return await HandleSasl2Async(e);
        }
        if (e.Is("iq", Ns.Client) && e.FirstElement is { } payload
            && _s.Modules.FindIq(Modules.IqTarget.Stream, payload.Namespace, payload.Name) is { } handler)
        {
            await HandlePreAuthIqAsync(e, payload, handler);
            return StreamAction.Continue;
        }
        throw new XmppStreamException(StreamErrors.NotAuthorized, "Authenticate before sending stanzas");
    }

    private Dictionary<string, string>? _preAuthState;

    private async ValueTask HandlePreAuthIqAsync(Element iq, Element payload, Modules.IqHandler handler)
    {
        var replies = new List<Element>(1);
        var self = Jid.Parse(_domain);
        var context = new Modules.IqContext(iq, self, self, payload, null, replies.Add, unaddressed: true)
        {
            RemoteAddress = RemoteAddress,
            StreamState = _preAuthState ??= new Dictionary<string, string>(StringComparer.Ordinal),
        };
        await handler(context);
        if (!context.Answered) context.Error(StanzaErrors.InternalServerError);
        foreach (var r in replies) await WriteDirectAsync(r);
    }
}
