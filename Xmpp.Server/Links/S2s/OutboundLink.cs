using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Links.S2s;

/// Our stream to one remote domain for one of our domains (RFC 6120 §4: a server-to-server stream carries stanzas one
/// way). Set up on first use: connect, TLS, then SASL EXTERNAL (XEP-0178) or dialback (XEP-0220). Stanzas wait in a
/// bounded queue meanwhile; if the link cannot be set up each of them is bounced, and if it breaks later the ones not
/// yet written go to a new link.
internal sealed class OutboundLink
{
    private readonly S2sServices _s;
    private readonly S2sLinkManager _manager;
    private readonly Channel<Element> _queue = Channel.CreateUnbounded<Element>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _cts = new();
    private int _queued;
    private S2sConnection? _connection;
    private long _lastStanzaTicks = Environment.TickCount64;
    private long _lastWriteTicks = Environment.TickCount64;

    public OutboundLink(S2sServices s, S2sLinkManager manager, string local, string remote)
    {
        _s = s;
        _manager = manager;
        Local = local;
        Remote = remote;
    }

    /// Our direction of a link the peer opened and asked to be bidirectional (XEP-0288): stanzas go out on its stream,
    /// which stays the inbound stream's to read and to close.
    public static OutboundLink OverPeerLink(S2sServices s, S2sLinkManager manager, string local, string remote, S2sWire wire, string peerAddress) =>
        new(s, manager, local, remote)
        {
            _connection = new S2sConnection
            {
                Wire = wire, Target = new S2sTarget(peerAddress, 0, false, $"XEP-0288, the link {remote} opened"), StreamId = "",
                Features = new Element("features", Ns.Streams),
            },
            IsPeerLink = true,
            Authentication = "the peer's authenticated link (XEP-0288)",
        };

    public string Local { get; }
    public string Remote { get; }

    /// True for our direction of the peer's bidirectional link; false for a link we opened.
    public bool IsPeerLink { get; private init; }

    /// We asked the peer for XEP-0288 on a link we opened: stanzas from it arrive on this link too.
    public bool Bidi { get; private set; }
    public S2sLinkState State { get; private set; } = S2sLinkState.Connecting;
    public string? Authentication { get; private set; }
    public string? PeerAddress => _connection?.Target.ToString();

    /// The outstanding XEP-0199 ping's id and when it went out.
    internal (string Id, long Ticks)? Ping { get; set; }

    public long MillisecondsSinceStanza => Environment.TickCount64 - Interlocked.Read(ref _lastStanzaTicks);
    public long MillisecondsSinceWrite => Environment.TickCount64 - Interlocked.Read(ref _lastWriteTicks);

    public void Start() => _ = Task.Run(RunAsync);

    public enum EnqueueResult { Queued, Closed, Full }

    public EnqueueResult TryEnqueue(Element stanza)
    {
        lock (_gate)
        {
            if (State is S2sLinkState.Closing or S2sLinkState.Closed) return EnqueueResult.Closed;
            if (_queued >= _s.Options.MaxQueuedStanzas) return EnqueueResult.Full;
            _queued++;
            Interlocked.Exchange(ref _lastStanzaTicks, Environment.TickCount64);
            _queue.Writer.TryWrite(stanza);
            return EnqueueResult.Queued;
        }
    }

    /// Closes the link when nothing is waiting; false when a stanza slipped in meanwhile (the link stays).
    public bool TryCloseIdle()
    {
        lock (_gate)
        {
            if (State != S2sLinkState.Established || _queued > 0) return false;
            State = S2sLinkState.Closing;
        }
        _s.Logger.LogInformation("s2s {Local} -> {Remote}: closing the link after {Seconds} s without stanzas", Local, Remote, MillisecondsSinceStanza / 1000);
        _queue.Writer.TryComplete();
        return true;
    }

    /// Ends the link because the peer seems dead (no answer to a ping); stanzas not yet written go to a new link.
    public void Abort(string reason)
    {
        if (IsPeerLink) _s.Logger.LogInformation("s2s {Local} -> {Remote}: {Reason}; our direction of it ends", Local, Remote, reason);
        else _s.Logger.LogWarning("s2s {Local} -> {Remote}: {Reason}; closing the link", Local, Remote, reason);
        lock (_gate) { if (State != S2sLinkState.Closed) State = S2sLinkState.Closing; }
        _queue.Writer.TryComplete();
        // A link that ended meanwhile has disposed its token source: there is nothing left to cancel. The server's
        // stop aborts every link it still lists, and one can end between the listing and this call.
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }

    internal async ValueTask SendPingAsync(string id)
    {
        if (_connection is not { } c || State != S2sLinkState.Established) return;
        var ping = new Element("iq", Ns.Client).SetAttr("type", "get").SetAttr("id", id).SetAttr("from", Local).SetAttr("to", Remote)
            .Add(new Element("ping", Ns.Ping));
        try
        {
            await c.Wire.WriteAsync(ping, _cts.Token);
            Interlocked.Exchange(ref _lastWriteTicks, Environment.TickCount64);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            Abort("writing a ping failed");
        }
    }

    private async Task RunAsync()
    {
        if (IsPeerLink)
        {
            await RunOverPeerLinkAsync();
            return;
        }
        try
        {
            using (var setup = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token))
            {
                setup.CancelAfter(TimeSpan.FromSeconds(_s.Options.SetupTimeoutSeconds));
                try
                {
                    _connection = await SetUpAsync(setup.Token);
                }
                catch (OperationCanceledException)
                {
                    await FailAsync(StanzaErrors.RemoteServerTimeout, _cts.IsCancellationRequested
                        ? "the link was closed while it was being set up"
                        : $"setting up the link took longer than {_s.Options.SetupTimeoutSeconds} s");
                    return;
                }
                catch (S2sConnectException ex)
                {
                    await FailAsync(ex.Timeout ? StanzaErrors.RemoteServerTimeout : StanzaErrors.RemoteServerNotFound, ex.Message);
                    return;
                }
                catch (Exception ex) when (ex is S2sNegotiationException or XmppStreamException or S2sClosedException or IOException
                                               or System.Security.Authentication.AuthenticationException)
                {
                    var reason = ex is XmppStreamException xe ? $"stream error {xe.Condition}: {xe.Text}" : ex.Message;
                    _s.Logger.LogWarning("s2s {Local} -> {Remote}: link not set up: {Reason}", Local, Remote, reason);
                    await FailAsync(StanzaErrors.RemoteServerNotFound, reason);
                    return;
                }
            }
            lock (_gate) { if (State == S2sLinkState.Connecting) State = S2sLinkState.Established; }
            _s.Logger.LogInformation("s2s {Local} -> {Remote}: link up via {Target}, authenticated with {Authentication}{Bidi}",
                Local, Remote, _connection.Target, Authentication, Bidi ? ", bidirectional (XEP-0288)" : "");
            var reader = Task.Run(ReadUntilEndAsync);
            await WriteLoopAsync();
            await _connection.Wire.CloseStreamAsync();
            _cts.CancelAfter(TimeSpan.FromSeconds(2));
            await reader;
        }
        catch (Exception ex)
        {
            _s.Logger.LogError(ex, "s2s {Local} -> {Remote}: link failed", Local, Remote);
        }
        finally
        {
            lock (_gate) State = S2sLinkState.Closed;
            _manager.Remove(this);
            if (_connection is not null) await _connection.DisposeAsync();
            // Stanzas still waiting (a broken link, or ones that raced the close) go out on a new link.
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var left))
            {
                Interlocked.Decrement(ref _queued);
                await _manager.ResendAsync(left);
            }
            _cts.Dispose();
        }
    }

    private async Task RunOverPeerLinkAsync()
    {
        try
        {
            lock (_gate) { if (State == S2sLinkState.Connecting) State = S2sLinkState.Established; }
            _s.Logger.LogInformation("s2s {Local} -> {Remote}: sending over the link {Remote} opened from {Peer} (XEP-0288)", Local, Remote, Remote, _connection!.Target.Host);
            await WriteLoopAsync();
        }
        catch (Exception ex)
        {
            _s.Logger.LogError(ex, "s2s {Local} -> {Remote}: our direction of the peer's link failed", Local, Remote);
        }
        finally
        {
            lock (_gate) State = S2sLinkState.Closed;
            _manager.Remove(this);
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var left))
            {
                Interlocked.Decrement(ref _queued);
                await _manager.ResendAsync(left);
            }
            _cts.Dispose();
        }
    }

    private async Task<S2sConnection> SetUpAsync(CancellationToken ct)
    {
        var connection = await new S2sConnector(_s).ConnectAsync(Local, Remote, "stanzas", ct);
        try
        {
            if (connection.CertificateProblem is { } problem)
            {
                if (_s.RequiresVerifiedCertificate(Remote))
                    throw new S2sNegotiationException($"its certificate was not accepted ({problem}), and this server requires a verified certificate from {Remote}");
                _s.Logger.LogInformation("s2s {Local} -> {Remote}: the certificate of {Target} was not accepted ({Problem}); continuing with dialback",
                    Local, Remote, connection.Target, problem);
            }
            var features = connection.Features;
            // XEP-0288 §2.2: asked for before authenticating. Only of a peer whose certificate proves its domain: what
            // comes back on this link is then known to come from it (otherwise it opens its own link and proves itself).
            if (_s.Options.Bidi && connection.CertificateProblem is null && features.Child("bidi", Ns.BidiFeature) is not null)
            {
                await connection.Wire.WriteAsync(new Element("bidi", Ns.Bidi), ct);
                Bidi = true;
            }
            bool external = features.Child("mechanisms", Ns.Sasl) is { } mechanisms
                            && mechanisms.Elements("mechanism", Ns.Sasl).Any(m => m.Text.Trim() == "EXTERNAL");
            bool dialback = _s.Options.AllowDialback && !_s.RequiresVerifiedCertificate(Remote);
            // The peer offers EXTERNAL only when our certificate proves our domain to it (XEP-0178 §3), whatever we made
            // of its certificate.
            if (external)
            {
                if (await SaslExternalAsync(connection, ct))
                {
                    Authentication = "SASL EXTERNAL";
                    return connection;
                }
                _s.Logger.LogInformation("s2s {Local} -> {Remote}: SASL EXTERNAL was refused (our certificate for {Local} did not satisfy {Remote}){Next}",
                    Local, Remote, Local, Remote, dialback ? "; trying dialback" : "");
            }
            if (!dialback)
                throw new S2sNegotiationException(external
                    ? "SASL EXTERNAL failed and dialback is not allowed for this domain"
                    : "the server does not offer SASL EXTERNAL for our certificate, and dialback is not allowed for this domain");
            await DialbackAsync(connection, ct);
            Authentication = "dialback";
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// XEP-0178 §3: authorization identity = our domain; on success the stream restarts (RFC 6120 §6.4.6).
    private async Task<bool> SaslExternalAsync(S2sConnection c, CancellationToken ct)
    {
        var auth = new Element("auth", Ns.Sasl).SetAttr("mechanism", "EXTERNAL")
            .SetText(Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Local)));
        await c.Wire.WriteAsync(auth, ct);
        var answer = await c.Wire.ReadElementAsync(ct);
        if (answer.Is("failure", Ns.Sasl)) return false;
        if (!answer.Is("success", Ns.Sasl)) throw new S2sNegotiationException($"the server answered SASL with <{answer.Name}/>");
        c.Wire.ResetParser();
        await c.Wire.WriteHeaderAsync(Local, Remote, null, ct);
        var (header, features) = await S2sConnector.ReadHeaderAndFeaturesAsync(c.Wire, ct);
        c.StreamId = header.Attr("id") ?? c.StreamId;
        c.Features = features;
        return true;
    }

    /// XEP-0220 §2.1: send our key for (remote, local, stream id); the receiving server checks it with our
    /// authoritative server (us) and answers valid or invalid.
    private async Task DialbackAsync(S2sConnection c, CancellationToken ct)
    {
        var key = _s.Keys.Generate(Remote, Local, c.StreamId);
        await c.Wire.WriteDialbackAsync("result", Local, Remote, null, null, key, ct);
        while (true)
        {
            var answer = await c.Wire.ReadElementAsync(ct);
            if (answer.Is("error", Ns.Streams)) throw S2sConnector.StreamError(answer);
            if (!answer.Is("result", Ns.Dialback)) continue;
            switch (answer.Attr("type"))
            {
                case "valid": return;
                case "invalid": throw new S2sNegotiationException($"{Remote} refused our dialback key (it could not verify {Local} with us)");
                default:
                    var condition = answer.Child("error", Ns.Client)?.Elements().FirstOrDefault()?.Name ?? "unknown";
                    throw new S2sNegotiationException($"{Remote} answered dialback with an error ({condition})");
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Element>(64);
        try
        {
            while (await reader.WaitToReadAsync(_cts.Token))
            {
                batch.Clear();
                while (batch.Count < 64 && reader.TryPeek(out var next))
                {
                    batch.Add(next);
                    reader.TryRead(out _);
                }
                await _connection!.Wire.WriteAsync(batch, _cts.Token);
                lock (_gate) _queued -= batch.Count;
                Interlocked.Exchange(ref _lastWriteTicks, Environment.TickCount64);
                batch.Clear();
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // A batch whose write failed may or may not have arrived; without stream management on server links nobody can
            // tell, so it is not sent twice. The stanzas still queued go to a new link (finally in RunAsync).
            if (batch.Count > 0)
            {
                lock (_gate) _queued -= batch.Count;
                _s.Logger.LogWarning("s2s {Local} -> {Remote}: the link broke while writing {Count} stanza(s): {Message}", Local, Remote, batch.Count, ex.Message);
            }
        }
    }

    /// A server link carries nothing back but stream-level elements; a stream error or the end closes the link.
    private async Task ReadUntilEndAsync()
    {
        try
        {
            while (true)
            {
                var (kind, item) = await _connection!.Wire.ReadAsync(_cts.Token);
                if (kind == XmlItemKind.StreamEnd) break;
                if (item is not null && item.Is("error", Ns.Streams))
                {
                    _s.Logger.LogWarning("s2s {Local} -> {Remote}: {Error}", Local, Remote, S2sConnector.StreamError(item).Message);
                    break;
                }
                if (Bidi && item is not null && item.Namespace == Ns.Client && item.Name is "message" or "presence" or "iq"
                    && !await FromPeerAsync(item))
                    break;
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or XmppStreamException)
        {
        }
        lock (_gate) { if (State == S2sLinkState.Established) State = S2sLinkState.Closing; }
        _queue.Writer.TryComplete();
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// A stanza the peer sent back on our bidirectional link: checked as an inbound link checks them (RFC 6120 §8.1.1.2,
    /// §4.9.3.10): from the domain this link reached, to a domain we serve. False when the link must end.
    private async Task<bool> FromPeerAsync(Element stanza)
    {
        var c = _connection!;
        if (!Jid.TryParse(stanza.Attr("from"), out var from) || from!.Domain != Remote)
        {
            _s.Logger.LogWarning("s2s {Local} -> {Remote}: a stanza from {From} on our link to {Remote}: invalid-from", Local, Remote, stanza.Attr("from") ?? "(none)", Remote);
            await c.Wire.CloseStreamAsync(StreamErrors.Create(StreamErrors.InvalidFrom, $"This link carries stanzas from {Remote} only"));
            return false;
        }
        if (!Jid.TryParse(stanza.Attr("to"), out var to))
        {
            await _s.Router.BounceAsync(stanza, StanzaErrors.JidMalformed);
            return true;
        }
        if (!_s.Serves(to!.Domain))
        {
            await c.Wire.CloseStreamAsync(StreamErrors.Create(StreamErrors.HostUnknown, $"This server does not serve {to.Domain}"));
            return false;
        }
        Interlocked.Exchange(ref _lastStanzaTicks, Environment.TickCount64);
        if (stanza.Name == "iq" && stanza.Attr("type") is "result" or "error" && _manager.CompletePing(stanza.Attr("id"))) return true;
        await _s.Router.RouteFromLinkAsync(stanza);
        return true;
    }

    private async Task FailAsync(string condition, string reason)
    {
        lock (_gate) State = S2sLinkState.Closed;
        _queue.Writer.TryComplete();
        int bounced = 0;
        while (_queue.Reader.TryRead(out var stanza))
        {
            Interlocked.Decrement(ref _queued);
            bounced++;
            await _manager.BounceAsync(stanza, condition, reason);
        }
        _s.Logger.LogWarning("s2s {Local} -> {Remote}: giving up ({Reason}); {Count} waiting stanza(s) answered with {Condition}",
            Local, Remote, reason, bounced, condition);
    }
}
