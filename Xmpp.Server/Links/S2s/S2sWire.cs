using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Links.S2s;

/// Elements in and out of one server-to-server connection, for both directions: the stream header, one top-level
/// element at a time, and the swap to TLS pipes after &lt;proceed/&gt; (as Kestrel's HTTPS middleware swaps them).
/// Stanzas arrive in jabber:server and are moved into jabber:client, the namespace the rest of the server uses;
/// they leave written with jabber:client as the default namespace, so inside the jabber:server stream they carry no
/// xmlns and are read as jabber:server (RFC 6120 §4.8.3).
internal sealed class S2sWire : IAsyncDisposable
{
    private readonly Stream _transport;
    private readonly XmppStreamParser _parser;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private PipeReader _input;
    private PipeWriter _output;
    private Stream _stream;
    private readonly string _contentNamespace;

    /// contentNamespace is the stream's default namespace whose stanzas are read as jabber:client (jabber:server, or
    /// jabber:component:accept on an XEP-0114 component stream, which shares this wire).
    public S2sWire(Stream transport, PipeReader input, PipeWriter output, ParserLimits limits, string contentNamespace = Ns.Server)
    {
        _contentNamespace = contentNamespace;
        _transport = transport;
        _stream = transport;
        _input = input;
        _output = output;
        _parser = new XmppStreamParser(limits);
    }

    public static S2sWire Over(Stream stream, ParserLimits limits) =>
        new(stream, PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4096, leaveOpen: true)),
            PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)), limits);

    public SslStream? Tls { get; private set; }
    public bool IsSecure => Tls is not null;
    public long LastReadTicks { get; private set; } = Environment.TickCount64;

    /// Set on inbound connections: reads slow down to the configured rate.
    public ReadThrottle? Throttle { get; init; }

    /// The next header, element or end of stream; (StreamEnd, null) also when the peer closed the connection.
    public async ValueTask<(XmlItemKind Kind, Element? Item)> ReadAsync(CancellationToken ct)
    {
        while (true)
        {
            if (Throttle is { } throttle) await throttle.WaitAsync(ct);
            var result = await _input.ReadAsync(ct);
            var buffer = result.Buffer;
            LastReadTicks = Environment.TickCount64;
            var position = buffer.End;
            try
            {
                if (!buffer.IsEmpty)
                {
                    // One item at a time: bytes after <starttls/> or <proceed/> are TLS, never XML.
                    var kind = _parser.Parse(buffer, out var consumed, out var item);
                    if (kind != XmlItemKind.NeedMoreData)
                    {
                        position = consumed;
                        if (kind == XmlItemKind.Element && item is not null) ToClientNamespace(item, _contentNamespace);
                        return (kind, item);
                    }
                }
            }
            finally
            {
                // Everything up to an item's end is consumed; unparsed bytes after it stay unexamined for the next call.
                Throttle?.Took(buffer.Slice(buffer.Start, position).Length);
                _input.AdvanceTo(position, position);
            }
            if (result.IsCompleted || result.IsCanceled) return (XmlItemKind.StreamEnd, null);
        }
    }

    /// Reads until a top-level element arrives (a header or end is a protocol error here).
    public async ValueTask<Element> ReadElementAsync(CancellationToken ct)
    {
        var (kind, item) = await ReadAsync(ct);
        return kind switch
        {
            XmlItemKind.Element => item!,
            XmlItemKind.StreamEnd => throw new S2sClosedException(item?.ToString() ?? "the peer closed the stream"),
            _ => throw new XmppStreamException(StreamErrors.InvalidXml, "Unexpected stream header"),
        };
    }

    public async ValueTask<Element> ReadHeaderAsync(CancellationToken ct)
    {
        var (kind, item) = await ReadAsync(ct);
        if (kind == XmlItemKind.StreamHeader) return item!;
        if (kind == XmlItemKind.StreamEnd) throw new S2sClosedException("the peer closed the connection before its stream header");
        throw new XmppStreamException(StreamErrors.InvalidXml, "Expected a stream header");
    }

    public async ValueTask WriteAsync(Element e, CancellationToken ct = default)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            e.WriteTo(_output, Ns.Client);
            await _output.FlushAsync(ct);
        }
        finally { _writeLock.Release(); }
    }

    /// Several stanzas, one flush.
    public async ValueTask WriteAsync(IReadOnlyList<Element> batch, CancellationToken ct = default)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            foreach (var e in batch) e.WriteTo(_output, Ns.Client);
            await _output.FlushAsync(ct);
        }
        finally { _writeLock.Release(); }
    }

    public async ValueTask WriteRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct = default)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            await _output.WriteAsync(bytes, ct);
        }
        finally { _writeLock.Release(); }
    }

    public ValueTask WriteRawAsync(string xml, CancellationToken ct = default) =>
        WriteRawAsync(System.Text.Encoding.UTF8.GetBytes(xml), ct);

    /// Our stream header: jabber:server with the dialback prefix declared (XEP-0220 §2.1), version 1.0.
    public ValueTask WriteHeaderAsync(string? from, string? to, string? id, CancellationToken ct = default)
    {
        var w = new ArrayBufferWriter<byte>(256);
        w.Write("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"u8);
        void Attribute(ReadOnlySpan<byte> name, string? value)
        {
            if (value is null) return;
            w.Write(name);
            ElementWriter.WriteEscaped(w, value, attribute: true);
            w.Write("'"u8);
        }
        Attribute(" from='"u8, from);
        Attribute(" to='"u8, to);
        Attribute(" id='"u8, id);
        w.Write(" version='1.0' xml:lang='en'>"u8);
        return WriteRawAsync(w.WrittenMemory, ct);
    }

    /// A dialback element with the db: prefix the header declared, as XEP-0220's examples and older peers expect.
    public ValueTask WriteDialbackAsync(string name, string from, string to, string? id, string? type, string? key, CancellationToken ct = default)
    {
        var w = new ArrayBufferWriter<byte>(256);
        w.Write("<db:"u8);
        ElementWriter.WriteRaw(w, name);
        void Attribute(string attr, string? value)
        {
            if (value is null) return;
            ElementWriter.WriteRaw(w, " " + attr + "='");
            ElementWriter.WriteEscaped(w, value, attribute: true);
            w.Write("'"u8);
        }
        Attribute("from", from);
        Attribute("to", to);
        Attribute("id", id);
        Attribute("type", type);
        if (key is null) w.Write("/>"u8);
        else
        {
            w.Write(">"u8);
            ElementWriter.WriteEscaped(w, key, attribute: false);
            w.Write("</db:"u8);
            ElementWriter.WriteRaw(w, name);
            w.Write(">"u8);
        }
        return WriteRawAsync(w.WrittenMemory, ct);
    }

    public async ValueTask CloseStreamAsync(Element? error = null)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (error is not null) await WriteAsync(error, cts.Token);
            await WriteRawAsync("</stream:stream>"u8.ToArray(), cts.Token);
            await _writeLock.WaitAsync(cts.Token);
            try { await _output.FlushAsync(cts.Token); } finally { _writeLock.Release(); }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The peer is gone already; nothing more to tell it.
        }
    }

    /// Server side of TLS after &lt;proceed/&gt; or on a direct TLS port.
    public async Task StartTlsAsServerAsync(ServerOptionsSelectionCallback selector, CancellationToken ct)
    {
        var ssl = new SslStream(_transport, leaveInnerStreamOpen: true);
        await ssl.AuthenticateAsServerAsync(selector, null, ct);
        SwapTo(ssl);
    }

    /// Client side: SNI is the peer's domain (RFC 6120 §13.7.2.1), our certificate goes along for SASL EXTERNAL.
    public async Task StartTlsAsClientAsync(string targetDomain, SslStreamCertificateContext? ours, string[]? alpn,
        RemoteCertificateValidationCallback capture, CancellationToken ct)
    {
        var ssl = new SslStream(_transport, leaveInnerStreamOpen: true);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = targetDomain,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            // Checked afterwards against the policy for this domain: an unverified certificate may still do for dialback.
            RemoteCertificateValidationCallback = capture,
            ClientCertificateContext = ours,
            ApplicationProtocols = alpn is { Length: > 0 } ? alpn.Select(p => new SslApplicationProtocol(p)).ToList() : null,
        };
        await ssl.AuthenticateAsClientAsync(options, ct);
        SwapTo(ssl);
    }

    private void SwapTo(SslStream ssl)
    {
        Tls = ssl;
        _stream = ssl;
        _input = PipeReader.Create(ssl, new StreamPipeReaderOptions(bufferSize: 4096, leaveOpen: true));
        _output = PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true));
        // RFC 6120 §5.4.3.3: a fresh stream starts over the TLS layer.
        _parser.Reset();
    }

    /// After SASL success both sides start a new stream over the same layer (RFC 6120 §6.4.6).
    public void ResetParser() => _parser.Reset();

    public async ValueTask DisposeAsync()
    {
        try { await _input.CompleteAsync(); } catch (InvalidOperationException) { }
        try { await _output.CompleteAsync(); } catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException) { }
        if (Tls is { } tls) { try { await tls.DisposeAsync(); } catch (IOException) { } }
        try { await _transport.DisposeAsync(); } catch (IOException) { }
        _writeLock.Dispose();
    }

    /// jabber:server (or the component namespace) → jabber:client for the stanza and every child that inherited it.
    private static void ToClientNamespace(Element e, string content)
    {
        if (e.Namespace != content) return;
        e.Namespace = Ns.Client;
        foreach (var child in e.Elements()) ToClientNamespace(child, content);
    }
}

/// The peer ended the stream or the connection.
internal sealed class S2sClosedException(string message) : Exception(message);
