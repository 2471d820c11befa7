using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Links.S2s;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Links.Components;

/// One component's connection (XEP-0114): the component opens a jabber:component:accept stream to its domain, proves
/// the shared secret with &lt;handshake/&gt;, and from then on stanzas flow both ways. Every stanza from it must come
/// from its domain or a JID at it; it is then routed like a stanza from any other link.
internal sealed class ComponentStream
{
    private readonly ComponentLinks _links;
    private readonly ConnectionContext _connection;
    private readonly CancellationTokenSource _cts = new();
    private readonly Channel<Element> _outbox;
    private S2sWire? _wire;
    private string? _domain;   // set once the handshake succeeded and the domain is ours to use
    private volatile bool _closed;

    public ComponentStream(ComponentLinks links, ConnectionContext connection)
    {
        _links = links;
        _connection = connection;
        _outbox = Channel.CreateBounded<Element>(new BoundedChannelOptions(links.MaxSendQueue)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        RemoteAddress = connection.RemoteEndPoint is IPEndPoint ip
            ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString()
            : connection.RemoteEndPoint?.ToString() ?? "unknown";
    }

    public string RemoteAddress { get; }
    public bool IsClosed => _closed;
    public long MillisecondsSinceRead => _wire is null ? 0 : Environment.TickCount64 - _wire.LastReadTicks;

    /// Queues a stanza for the component; false when the stream is closing or its queue is full.
    public bool Send(Element stanza) => !_closed && _outbox.Writer.TryWrite(stanza);

    public void Close(string condition, string text)
    {
        if (_closed) return;
        _ = Task.Run(async () =>
        {
            try { await FailAsync(condition, text); } catch (ObjectDisposedException) { }
        });
    }

    public async Task RunAsync()
    {
        _wire = new S2sWire(new DuplexPipeStream(_connection.Transport), _connection.Transport.Input, _connection.Transport.Output,
            _links.ParserLimits, Ns.ComponentAccept)
        {
            // As for clients and servers: a component above the sustained rate is slowed down, not dropped.
            Throttle = _links.Options.ReadBytesPerSecond > 0 ? new ReadThrottle(_links.Options.ReadBytesPerSecond, _links.Options.ReadBurstBytes) : null,
        };
        Task? writer = null;
        try
        {
            await HandshakeAsync();
            writer = Task.Run(WriteLoopAsync);
            await ReadLoopAsync();
        }
        catch (XmppStreamException ex)
        {
            await FailAsync(ex.Condition, ex.Text);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException or ConnectionAbortedException
                                       or ObjectDisposedException or S2sClosedException)
        {
            _links.Logger.LogDebug("component {Domain} from {Ip} ended: {Message}", _domain ?? "?", RemoteAddress, ex.Message);
        }
        catch (Exception ex)
        {
            _links.Logger.LogError(ex, "component {Domain} from {Ip} failed", _domain ?? "?", RemoteAddress);
            await FailAsync(StreamErrors.InternalServerError, null);
        }
        finally
        {
            _closed = true;
            _outbox.Writer.TryComplete();
            if (_domain is not null)
            {
                _links.Detach(_domain, this);
                _links.Logger.LogInformation("component {Domain} disconnected", _domain);
            }
            try { _cts.Cancel(); } catch (ObjectDisposedException) { }
            if (writer is not null) { try { await writer; } catch (Exception) { } }
            await BounceQueuedAsync();
            await _wire.DisposeAsync();
            _cts.Dispose();
        }
    }

    // ---- Handshake (XEP-0114 §3) ----

    private async Task HandshakeAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(_links.Options.HandshakeTimeoutSeconds));
        var header = await _wire!.ReadHeaderAsync(timeout.Token);
        var to = header.Attr("to");
        string? domain = to is not null && Jid.TryParse(to, out var toJid) && toJid.IsDomain ? toJid.Domain : null;
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        // RFC 6120 §4.9.1.2: our header goes out first, even when the stream is refused.
        await WriteHeaderAsync(domain, id, timeout.Token);
        if (header.Attr("xmlns") != Ns.ComponentAccept)
            throw new XmppStreamException(StreamErrors.InvalidNamespace, "A component stream's namespace is jabber:component:accept");
        if (header.Attr("xmlns:stream") != Ns.Streams)
            throw new XmppStreamException(StreamErrors.BadNamespacePrefix, "The streams namespace must use the prefix 'stream'");
        var secret = domain is null ? null : _links.SecretFor(domain);
        if (domain is null || secret is null)
        {
            _links.Logger.LogWarning("component from {Ip}: refused {Domain}: not a configured component domain", RemoteAddress, to ?? "(no 'to')");
            throw new XmppStreamException(StreamErrors.HostUnknown, $"{to ?? "(no 'to')"} is not a component domain of this server");
        }
        Element handshake;
        try { handshake = await _wire.ReadElementAsync(timeout.Token); }
        catch (OperationCanceledException) when (!_cts.IsCancellationRequested)
        {
            throw new XmppStreamException(StreamErrors.ConnectionTimeout, "No handshake in time");
        }
        if (!handshake.Is("handshake", Ns.Client))
            throw new XmppStreamException(StreamErrors.NotAuthorized, "Send <handshake/> before anything else");
        if (!HandshakeMatches(id, secret, handshake.Text.Trim()))
        {
            _links.Logger.LogWarning("component {Domain} from {Ip}: wrong secret in the handshake", domain, RemoteAddress);
            throw new XmppStreamException(StreamErrors.NotAuthorized, "The handshake does not match the secret");
        }
        if (_links.Stopping) throw new XmppStreamException(StreamErrors.SystemShutdown, "The server is stopping");
        // A second connection for a domain already connected is refused rather than replacing the first, as Prosody
        // does: a misconfigured second instance must not cut off a working bridge. A dead first connection is noticed
        // when its socket fails or closes, after which the domain is free again.
        if (!_links.TryAttach(domain, this))
        {
            _links.Logger.LogWarning("component {Domain} from {Ip}: refused, the domain is already connected", domain, RemoteAddress);
            throw new XmppStreamException(StreamErrors.Conflict, $"{domain} is already connected");
        }
        _domain = domain;
        await _wire.WriteAsync(new Element("handshake", Ns.Client), _cts.Token);
        _links.Logger.LogInformation("component {Domain} connected from {Ip}", domain, RemoteAddress);
    }

    /// XEP-0114 §3: the handshake is the hex SHA-1 of the stream id followed by the secret; compared in constant time.
    internal static bool HandshakeMatches(string streamId, string secret, string received)
    {
        var expected = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(streamId + secret))));
        var got = Encoding.UTF8.GetBytes(received.ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(expected, got);
    }

    private ValueTask WriteHeaderAsync(string? domain, string id, CancellationToken ct)
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>(256);
        w.Write("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept'"u8);
        if (domain is not null)
        {
            w.Write(" from='"u8);
            ElementWriter.WriteEscaped(w, domain, attribute: true);
            w.Write("'"u8);
        }
        w.Write(" id='"u8);
        ElementWriter.WriteEscaped(w, id, attribute: true);
        w.Write("'>"u8);
        return _wire!.WriteRawAsync(w.WrittenMemory, ct);
    }

    // ---- Stanzas ----

    private async Task ReadLoopAsync()
    {
        while (true)
        {
            var (kind, item) = await _wire!.ReadAsync(_cts.Token);
            switch (kind)
            {
                case XmlItemKind.StreamEnd:
                    await _wire.CloseStreamAsync();
                    return;
                case XmlItemKind.StreamHeader:
                    throw new XmppStreamException(StreamErrors.InvalidXml, "A second stream header");
            }
            var e = item!;
            if (e.Namespace == Ns.Client && e.Name is "message" or "presence" or "iq")
                await HandleStanzaAsync(e);
            else if (e.Is("error", Ns.Streams))
            {
                _links.Logger.LogWarning("component {Domain} sent a stream error: {Error}", _domain, e.FirstElement?.Name ?? "?");
                await _wire.CloseStreamAsync();
                return;
            }
            else
                throw new XmppStreamException(StreamErrors.UnsupportedStanzaType, $"<{e.Name} xmlns='{e.Namespace}'/> is not understood here");
        }
    }

    /// XEP-0114 §3.1: stanzas carry 'from' in the component's domain (invalid-from otherwise) and a 'to'.
    private async Task HandleStanzaAsync(Element stanza)
    {
        var domain = _domain!;
        var fromAttr = stanza.Attr("from");
        if (fromAttr is null) stanza.SetAttr("from", domain); // as Prosody does: no 'from' means the component itself
        else if (!Jid.TryParse(fromAttr, out var from) || from!.Domain != domain)
        {
            _links.Logger.LogWarning("component {Domain}: a stanza from {From}: invalid-from", domain, fromAttr);
            throw new XmppStreamException(StreamErrors.InvalidFrom, $"This component may only send from {domain}");
        }
        var toAttr = stanza.Attr("to");
        if (toAttr is null)
            throw new XmppStreamException(StreamErrors.ImproperAddressing, "Stanzas from a component carry a 'to'");
        if (!Jid.TryParse(toAttr, out _))
        {
            await _links.Router.BounceAsync(stanza, StanzaErrors.JidMalformed);
            return;
        }
        await _links.Router.RouteFromLinkAsync(stanza);
    }

    // ---- Writing ----

    private async Task WriteLoopAsync()
    {
        var reader = _outbox.Reader;
        var batch = new List<Element>(64);
        try
        {
            while (await reader.WaitToReadAsync(_cts.Token))
            {
                while (batch.Count < 64 && reader.TryRead(out var e)) batch.Add(e);
                await _wire!.WriteAsync(batch, _cts.Token);
                batch.Clear();
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection is going; what was not written is bounced when the stream ends.
        }
        finally
        {
            // Taken but not written: back to the outbox's leftovers for the bounce.
            foreach (var e in batch) _unwritten.Add(e);
        }
    }

    private readonly List<Element> _unwritten = [];

    /// What the component never got is answered, never silently lost (RFC 6120 §8.3.3).
    private async Task BounceQueuedAsync()
    {
        while (_outbox.Reader.TryRead(out var e)) _unwritten.Add(e);
        foreach (var e in _unwritten)
        {
            try { await _links.BounceAsync(e, StanzaErrors.ServiceUnavailable, "The component disconnected"); }
            catch (Exception ex) { _links.Logger.LogDebug(ex, "bounce after a component disconnected failed"); }
        }
        _unwritten.Clear();
    }

    private async Task FailAsync(string condition, string? text)
    {
        if (_wire is null) return;
        _closed = true;
        _links.Logger.LogInformation("component {Domain} from {Ip}: closing with {Condition}{Text}", _domain ?? "?", RemoteAddress, condition,
            text is null ? "" : ": " + text);
        await _wire.CloseStreamAsync(StreamErrors.Create(condition, text));
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }
}
