using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Links.S2s;

/// A stream another server opened to us (RFC 6120 with jabber:server): TLS first, then the peer proves the domains it
/// sends from, with SASL EXTERNAL on its certificate (XEP-0178) or dialback (XEP-0220, several domains on one stream
/// as §8 allows). Every stanza is then checked against what was proven and handed to the router as coming from afar.
internal sealed class InboundS2sStream
{
    private static readonly string[] Alpn = ["xmpp-server"];
    private static readonly ConditionalWeakTable<object, X509Certificate2Collection> PeerChains = new();

    /// Asks the peer for its certificate and keeps the intermediates it sent; judged after the handshake.
    internal static readonly RemoteCertificateValidationCallback CaptureClientCertificate = (sender, _, chain, _) =>
    {
        if (chain is not null) PeerChains.AddOrUpdate(sender, new X509Certificate2Collection(chain.ChainPolicy.ExtraStore));
        return true;
    };

    private readonly S2sServices _s;
    private readonly S2sLinkManager _manager;
    private readonly ConnectionContext _connection;
    private readonly bool _directTls;
    private readonly CancellationTokenSource _cts = new();
    private readonly ConcurrentDictionary<string, string> _authenticated = new(StringComparer.Ordinal); // remote domain → how
    private readonly ConcurrentDictionary<(string Remote, string Local), byte> _pendingDialback = new();
    private S2sWire? _wire;
    private string? _headerFrom;
    private string _local = "";
    private string _streamId = "";
    private bool _saslDone;
    private bool _bidi;
    private (string Local, string Remote)? _adoptAfterRestart;
    private readonly ConcurrentBag<OutboundLink> _peerLinks = [];
    private X509Certificate2? _peerCertificate;
    private X509Certificate2Collection? _peerChain;

    public InboundS2sStream(S2sServices s, S2sLinkManager manager, ConnectionContext connection, bool directTls)
    {
        _s = s;
        _manager = manager;
        _connection = connection;
        _directTls = directTls;
        RemoteAddress = connection.RemoteEndPoint is IPEndPoint ip
            ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString()
            : connection.RemoteEndPoint?.ToString() ?? "unknown";
    }

    public string RemoteAddress { get; }
    public string Local => _local;
    public string? ClaimedDomain => _headerFrom;
    public DateTimeOffset OpenedAt { get; } = DateTimeOffset.UtcNow;
    public bool IsAuthenticated => !_authenticated.IsEmpty;
    public long MillisecondsSinceRead => _wire is null ? 0 : Environment.TickCount64 - _wire.LastReadTicks;
    public bool IsClosed { get; private set; }

    /// The remote domains this stream proved, and how (SASL EXTERNAL or dialback).
    public IReadOnlyDictionary<string, string> Authenticated => _authenticated;

    public async Task RunAsync()
    {
        var o = _s.Options;
        _wire = new S2sWire(new DuplexPipeStream(_connection.Transport), _connection.Transport.Input, _connection.Transport.Output, _s.ParserLimits)
        {
            Throttle = o.ReadBytesPerSecond > 0 ? new ReadThrottle(o.ReadBytesPerSecond, o.ReadBurstBytes) : null,
        };
        bool withinLimit = _manager.Register(this);
        try
        {
            if (!withinLimit)
            {
                _s.Logger.LogWarning("s2s inbound from {Ip}: refused, {Max} server connections from this address are open already (Xmpp:S2s:MaxConnectionsPerIp)",
                    RemoteAddress, o.MaxConnectionsPerIp);
                // Nothing can be said before TLS on the direct TLS port; on the STARTTLS port the refusal is a stream
                // error after our header (RFC 6120 §4.9.1.2), sent at once rather than after the peer's.
                if (_directTls) return;
                await WriteHeaderAsync(_s.Domains.Default, null, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)));
                throw new XmppStreamException(StreamErrors.PolicyViolation, "Too many connections from your address");
            }
            if (_directTls) await StartTlsAsync();
            await ReadLoopAsync();
        }
        catch (XmppStreamException ex)
        {
            await FailAsync(ex.Condition, ex.Text);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionResetException or ConnectionAbortedException
                                       or ObjectDisposedException or S2sClosedException or System.Security.Authentication.AuthenticationException)
        {
            _s.Logger.LogDebug("s2s inbound from {Ip} ({Domain}) ended: {Message}", RemoteAddress, _headerFrom ?? "?", ex.Message);
        }
        catch (Exception ex)
        {
            _s.Logger.LogError(ex, "s2s inbound from {Ip} ({Domain}) failed", RemoteAddress, _headerFrom ?? "?");
            await FailAsync(StreamErrors.InternalServerError, null);
        }
        finally
        {
            IsClosed = true;
            foreach (var link in _peerLinks) link.Abort($"the link {link.Remote} opened (XEP-0288) ended");
            _manager.Unregister(this);
            await _wire.DisposeAsync();
            _cts.Dispose();
        }
    }

    /// From the sweeper: idle, or still not authenticated after the setup timeout.
    public void Close(string condition, string text)
    {
        if (IsClosed) return;
        _ = Task.Run(async () =>
        {
            try { await FailAsync(condition, text); } catch (ObjectDisposedException) { }
        });
    }

    private async Task ReadLoopAsync()
    {
        while (true)
        {
            var (kind, item) = await _wire!.ReadAsync(_cts.Token);
            switch (kind)
            {
                case XmlItemKind.StreamHeader:
                    await HandleHeaderAsync(item!);
                    break;
                case XmlItemKind.StreamEnd:
                    await _wire.CloseStreamAsync();
                    return;
                default:
                    if (!await HandleElementAsync(item!)) return;
                    break;
            }
        }
    }

    private async Task StartTlsAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        timeout.CancelAfter(_s.TlsHandshakeTimeout);
        await _wire!.StartTlsAsServerAsync(_s.Certificates.CreateServerOptionsSelector(_directTls ? Alpn : null, CaptureClientCertificate), timeout.Token);
        var tls = _wire.Tls!;
        if (tls.RemoteCertificate is { } remote)
            _peerCertificate = remote as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(remote.GetRawCertData());
        if (PeerChains.TryGetValue(tls, out var chain)) _peerChain = chain;
    }

    // ---- Stream header (RFC 6120 §4.7) ----

    private async Task HandleHeaderAsync(Element header)
    {
        var to = header.Attr("to");
        var from = header.Attr("from");
        string? toDomain = to is not null && Jid.TryParse(to, out var toJid) && toJid.IsDomain ? toJid.Domain : null;
        if (toDomain is not null && _s.Serves(toDomain)) _local = toDomain;
        else if (_local.Length == 0) _local = _s.Domains.Default;
        _streamId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        string? fromDomain = from is not null && Jid.TryParse(from, out var fromJid) && fromJid.IsDomain ? fromJid.Domain : null;
        await WriteHeaderAsync(_local, fromDomain, _streamId);

        if (header.Attr("xmlns") != Ns.Server)
            throw new XmppStreamException(StreamErrors.InvalidNamespace, "The content namespace of a server stream must be jabber:server");
        if (header.Attr("xmlns:stream") != Ns.Streams)
            throw new XmppStreamException(StreamErrors.BadNamespacePrefix, "The streams namespace must use the prefix 'stream'");
        if (header.Attr("version") is not { } version || !version.StartsWith("1.", StringComparison.Ordinal))
            throw new XmppStreamException(StreamErrors.UnsupportedVersion, "This server speaks XMPP 1.0 (and requires TLS)");
        if (to is null || toDomain is null || !_s.Serves(toDomain))
            throw new XmppStreamException(StreamErrors.HostUnknown, $"This server does not serve {to ?? "(no 'to')"}");
        if (from is not null && fromDomain is null)
            throw new XmppStreamException(StreamErrors.InvalidFrom, "The 'from' of a server stream is a domain");
        if (fromDomain is not null)
        {
            if (_s.Refusal(fromDomain) is { } refusal)
            {
                _s.Logger.LogInformation("s2s inbound from {Ip}: refused {Domain}: {Refusal}", RemoteAddress, fromDomain, refusal);
                throw new XmppStreamException(StreamErrors.PolicyViolation, refusal);
            }
            if (_headerFrom is null && TooManyLinks(fromDomain))
                throw new XmppStreamException(StreamErrors.PolicyViolation, $"Too many connections from {fromDomain}");
            if (_saslDone && _headerFrom is not null && fromDomain != _headerFrom)
                throw new XmppStreamException(StreamErrors.InvalidFrom, "The restarted stream must come from the authenticated domain");
            _headerFrom = fromDomain;
        }
        await _wire!.WriteAsync(Features(), _cts.Token);
        if (_adoptAfterRestart is { } adopt)
        {
            _adoptAfterRestart = null;
            AdoptIfBidi(adopt.Local, adopt.Remote);
        }
    }

    /// XEP-0288: once the peer proved a domain on a stream it asked to be bidirectional, our stanzas for that domain may
    /// go back on it: only from the domain the peer connected to, the one our certificate stood for on this stream
    /// (a domain of ours piggybacked with dialback was never proven to the peer).
    private void AdoptIfBidi(string local, string remote)
    {
        if (!_bidi || local != _local) return;
        if (_manager.AdoptPeerLink(local, remote, _wire!, RemoteAddress) is { } link) _peerLinks.Add(link);
    }

    /// Links per remote domain count the streams that proved it: a stream that only claims a domain cannot take a
    /// slot from the real one (unauthenticated streams are bounded per address and by the setup timeout instead).
    private bool TooManyLinks(string domain)
    {
        if (_manager.AuthenticatedInbound(domain, except: this) < _s.Options.MaxLinksPerDomain) return false;
        _s.Logger.LogWarning("s2s inbound from {Ip}: refused another link for {Domain}: {Max} are open already (Xmpp:S2s:MaxLinksPerDomain)",
            RemoteAddress, domain, _s.Options.MaxLinksPerDomain);
        return true;
    }

    private Element Features()
    {
        var features = new Element("features", Ns.Streams);
        if (!_wire!.IsSecure)
        {
            // RFC 7590 and this server's policy: every server link is encrypted.
            features.Add(new Element("starttls", Ns.Tls).Add(new Element("required", Ns.Tls)));
            return features;
        }
        if (!_saslDone && _headerFrom is not null)
        {
            // XEP-0178 §3: offered only when the certificate proves the domain the stream claims.
            var problem = _s.PeerCertificates.Problem(_peerCertificate, _peerChain, _headerFrom);
            if (problem is null)
                features.Add(new Element("mechanisms", Ns.Sasl).Add(new Element("mechanism", Ns.Sasl).SetText("EXTERNAL")));
            else
                _s.Logger.LogInformation("s2s inbound from {Ip}: no SASL EXTERNAL for {Domain}: {Problem}", RemoteAddress, _headerFrom, problem);
        }
        // XEP-0288 §2.1: offered before authentication; the peer asks for it with <bidi/> before SASL or dialback.
        if (_s.Options.Bidi && !_saslDone && _authenticated.IsEmpty) features.Add(new Element("bidi", Ns.BidiFeature));
        // XEP-0220 §2.1 (and §8 piggybacking after SASL): dialback, with error reporting (<errors/>).
        if (_s.Options.AllowDialback) features.Add(new Element("dialback", Ns.DialbackFeature).Add(new Element("errors", Ns.DialbackFeature)));
        return features;
    }

    // ---- Elements ----

    private async Task<bool> HandleElementAsync(Element e)
    {
        if (e.Is("starttls", Ns.Tls))
        {
            if (_wire!.IsSecure)
            {
                await _wire.WriteAsync(new Element("failure", Ns.Tls), _cts.Token);
                await _wire.CloseStreamAsync();
                return false;
            }
            await _wire.WriteAsync(new Element("proceed", Ns.Tls), _cts.Token);
            await StartTlsAsync();
            return true;
        }
        if (!_wire!.IsSecure)
            throw new XmppStreamException(StreamErrors.PolicyViolation, "STARTTLS is required on this server's links");
        if (e.Is("bidi", Ns.Bidi) && _s.Options.Bidi)
        {
            if (!_authenticated.IsEmpty || _saslDone)
                throw new XmppStreamException(StreamErrors.PolicyViolation, "<bidi/> comes before authentication (XEP-0288 §2.2)");
            _bidi = true;
            return true;
        }
        if (e.Namespace == Ns.Sasl)
        {
            await HandleSaslAsync(e);
            return true;
        }
        if (e.Namespace == Ns.Dialback)
        {
            await HandleDialbackAsync(e);
            return true;
        }
        if (e.Namespace == Ns.Client && e.Name is "message" or "presence" or "iq")
        {
            await HandleStanzaAsync(e);
            return true;
        }
        if (e.Is("error", Ns.Streams))
        {
            _s.Logger.LogWarning("s2s inbound from {Ip} ({Domain}): {Error}", RemoteAddress, _headerFrom ?? "?", S2sConnector.StreamError(e).Message);
            await _wire.CloseStreamAsync();
            return false;
        }
        throw new XmppStreamException(StreamErrors.UnsupportedStanzaType, $"<{e.Name} xmlns='{e.Namespace}'/> is not understood here");
    }

    // ---- SASL EXTERNAL (XEP-0178 §3) ----

    private async Task HandleSaslAsync(Element e)
    {
        if (!e.Is("auth", Ns.Sasl) || _saslDone)
            throw new XmppStreamException(StreamErrors.PolicyViolation, "Unexpected SASL element");
        if (e.Attr("mechanism") != "EXTERNAL")
        {
            await _wire!.WriteAsync(SaslFailure("invalid-mechanism"), _cts.Token);
            return;
        }
        // The authorization identity is empty ('=') or the domain the stream claims.
        var text = e.Text.Trim();
        string? authzid = null;
        if (text.Length > 0 && text != "=")
        {
            try { authzid = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(text)); }
            catch (FormatException) { await _wire!.WriteAsync(SaslFailure("incorrect-encoding"), _cts.Token); return; }
        }
        var domain = authzid ?? _headerFrom;
        string? problem = domain is null ? "the stream named no domain"
            : authzid is not null && _headerFrom is not null && authzid != _headerFrom ? $"{authzid} is not the stream's {_headerFrom}"
            : _s.PeerCertificates.Problem(_peerCertificate, _peerChain, domain);
        if (problem is not null)
        {
            _s.Logger.LogInformation("s2s inbound from {Ip}: SASL EXTERNAL for {Domain} refused: {Problem}", RemoteAddress, domain ?? "?", problem);
            await _wire!.WriteAsync(SaslFailure("not-authorized"), _cts.Token);
            return;
        }
        if (TooManyLinks(domain!))
            throw new XmppStreamException(StreamErrors.PolicyViolation, $"Too many connections from {domain}");
        _saslDone = true;
        _headerFrom = domain;
        _authenticated[domain!] = "SASL EXTERNAL";
        _s.Logger.LogInformation("s2s inbound from {Ip}: {Domain} authenticated with SASL EXTERNAL for {Local}{Bidi}", RemoteAddress, domain, _local,
            _bidi ? ", bidirectional (XEP-0288)" : "");
        await _wire!.WriteAsync(new Element("success", Ns.Sasl), _cts.Token);
        _wire.ResetParser(); // RFC 6120 §6.4.6: the peer opens a new stream
        // Our stanzas may follow only our header of the restarted stream (HandleHeaderAsync).
        if (_bidi) _adoptAfterRestart = (_local, domain!);
    }

    private static Element SaslFailure(string condition) => new Element("failure", Ns.Sasl).Add(new Element(condition, Ns.Sasl));

    // ---- Dialback (XEP-0220) ----

    private async Task HandleDialbackAsync(Element e)
    {
        var from = e.Attr("from");
        var to = e.Attr("to");
        if (from is null || to is null || !Jid.TryParse(from, out var fromJid) || !fromJid.IsDomain || !Jid.TryParse(to, out var toJid) || !toJid.IsDomain)
            throw new XmppStreamException(StreamErrors.ImproperAddressing, "Dialback elements carry a domain in 'from' and 'to'");
        var remote = fromJid.Domain;
        var local = toJid.Domain;
        switch (e.Name)
        {
            case "verify":
                // §2.4: we are the authoritative server; the key is ours if we made it for this stream id.
                var id = e.Attr("id") ?? "";
                bool valid = _s.Serves(local) && _s.Keys.Verify(remote, local, id, e.Text);
                _s.Logger.LogInformation("s2s: {Remote} asked whether a dialback key from {Local} is ours: {Answer}", remote, local, valid ? "valid" : "invalid");
                await _wire!.WriteDialbackAsync("verify", local, remote, id, valid ? "valid" : "invalid", null, _cts.Token);
                return;
            case "result" when e.Attr("type") is null:
                if (!_s.Options.AllowDialback)
                {
                    await DialbackErrorAsync(local, remote, "policy-violation", "Dialback is disabled on this server");
                    return;
                }
                if (!_s.Serves(local))
                {
                    // §2.4 (Errors): the receiving server does not serve the target domain.
                    await DialbackErrorAsync(local, remote, "item-not-found", $"This server does not serve {local}");
                    return;
                }
                if (_s.Refusal(remote) is { } refusal)
                {
                    await DialbackErrorAsync(local, remote, "policy-violation", refusal);
                    return;
                }
                if (_s.RequiresVerifiedCertificate(remote) && _s.PeerCertificates.Problem(_peerCertificate, _peerChain, remote) is { } problem)
                {
                    _s.Logger.LogInformation("s2s inbound from {Ip}: dialback for {Remote} refused, a verified certificate is required: {Problem}", RemoteAddress, remote, problem);
                    await DialbackErrorAsync(local, remote, "not-authorized", "This server requires a verified certificate from " + remote);
                    return;
                }
                if (!_pendingDialback.TryAdd((remote, local), 0)) return;
                // Verified on the side, so piggybacked requests (§8) and stanzas of domains already proven keep flowing.
                var key = e.Text.Trim();
                _ = Task.Run(() => VerifyDialbackAsync(remote, local, key));
                return;
            default:
                throw new XmppStreamException(StreamErrors.PolicyViolation, $"Unexpected dialback element <{e.Name}/>");
        }
    }

    private async Task VerifyDialbackAsync(string remote, string local, string key)
    {
        bool valid;
        string how;
        try
        {
            // XEP-0344 §2.4: a certificate that proves the domain makes asking its authoritative server unnecessary.
            if (_s.PeerCertificates.Problem(_peerCertificate, _peerChain, remote) is null)
            {
                valid = true;
                how = "its certificate";
            }
            else
            {
                valid = await new DialbackVerifier(_s).VerifyAsync(local, remote, _streamId, key, _cts.Token);
                how = "asking its authoritative server";
            }
        }
        catch (Exception ex) when (ex is S2sConnectException or S2sNegotiationException or IOException or OperationCanceledException
                                       or XmppStreamException or S2sClosedException or ObjectDisposedException
                                       or System.Security.Authentication.AuthenticationException)
        {
            _s.Logger.LogWarning("s2s inbound from {Ip}: could not verify dialback for {Remote}: {Message}", RemoteAddress, remote, ex.Message);
            _pendingDialback.TryRemove((remote, local), out _);
            try { await DialbackErrorAsync(local, remote, "remote-server-not-found", $"Could not reach {remote} to verify its key"); }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
            return;
        }
        _pendingDialback.TryRemove((remote, local), out _);
        if (valid && !_authenticated.ContainsKey(remote) && TooManyLinks(remote))
        {
            try { await DialbackErrorAsync(local, remote, "policy-violation", $"Too many connections from {remote}"); }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
            return;
        }
        bool added = valid && _authenticated.TryAdd(remote, "dialback");
        _s.Logger.LogInformation("s2s inbound from {Ip}: dialback for {Remote} -> {Local} {Outcome} (checked by {How})",
            RemoteAddress, remote, local, valid ? "valid" : "INVALID", how);
        try { await _wire!.WriteDialbackAsync("result", local, remote, null, valid ? "valid" : "invalid", null, _cts.Token); }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException) { return; }
        // After the result: the peer takes stanzas from us only once it knows it is authenticated.
        if (added) AdoptIfBidi(local, remote);
    }

    private async Task DialbackErrorAsync(string local, string remote, string condition, string text)
    {
        // XEP-0220 §2.4: <db:result type='error'> with a stanza error inside.
        var error = StanzaErrors.CreateError(condition, text: text);
        var inner = System.Text.Encoding.UTF8.GetString(ElementWriter.ToBytes(error, Ns.Client));
        var xml = $"<db:result from='{System.Security.SecurityElement.Escape(local)}' to='{System.Security.SecurityElement.Escape(remote)}' type='error'>{inner}</db:result>";
        await _wire!.WriteRawAsync(xml, _cts.Token);
    }

    // ---- Stanzas (RFC 6120 §8.1.1.2, §4.9.3.10 invalid-from) ----

    private async Task HandleStanzaAsync(Element stanza)
    {
        if (_authenticated.IsEmpty)
            throw new XmppStreamException(StreamErrors.NotAuthorized, "Authenticate (SASL EXTERNAL or dialback) before sending stanzas");
        var fromAttr = stanza.Attr("from");
        var toAttr = stanza.Attr("to");
        // RFC 6120 §8.1.1.1, §8.1.2.1: on a server stream both addresses are required.
        if (fromAttr is null || toAttr is null)
            throw new XmppStreamException(StreamErrors.ImproperAddressing, "Stanzas between servers carry both 'from' and 'to'");
        if (!Jid.TryParse(fromAttr, out var from) || !_authenticated.ContainsKey(from!.Domain))
        {
            _s.Logger.LogWarning("s2s inbound from {Ip}: a stanza from {From} on a link authenticated for {Domains}: invalid-from",
                RemoteAddress, fromAttr, string.Join(", ", _authenticated.Keys));
            throw new XmppStreamException(StreamErrors.InvalidFrom, $"This link is not authenticated for {fromAttr}");
        }
        if (!Jid.TryParse(toAttr, out var to))
        {
            // The address itself is broken: answered like any malformed JID (RFC 6120 §8.3.3.8).
            await _s.Router.BounceAsync(stanza, StanzaErrors.JidMalformed);
            return;
        }
        if (!_s.Serves(to!.Domain))
            throw new XmppStreamException(StreamErrors.HostUnknown, $"This server does not serve {to.Domain}");
        var type = stanza.Attr("type");
        // Answers (IQ results, errors of any stanza kind) are never refused: RFC 6120 §8.3.1 forbids answering an error
        // with an error, and a refused result would leave our own request waiting. The read rate bounds them.
        bool answer = type == "error" || stanza.Name == "iq" && type is "result";
        if (!answer && _s.DomainStanzaRate is { } rate && !rate.TryTake(from.Domain))
        {
            _s.Metrics?.Refuse("s2s-domain-rate");
            _s.Logger.LogDebug("s2s inbound from {Ip}: a {Stanza} from {From} over {Domain}'s stanza rate (Xmpp:S2s:StanzasPerSecondPerDomain)",
                RemoteAddress, stanza.Name, fromAttr, from.Domain);
            // RFC 6120 §8.3.3.12 with type "wait": the sender may retry later. Presence has nobody waiting for an answer
            // (errors would only flood the sender's contacts back), so it is dropped and counted.
            if (stanza.Name != "presence") await _s.Router.BounceAsync(stanza, StanzaErrors.PolicyViolation, "Too many stanzas from your server: slow down", "wait");
            return;
        }
        if (stanza.Name == "iq" && type is "result" or "error" && _manager.CompletePing(stanza.Attr("id"))) return;
        await _s.Router.RouteFromLinkAsync(stanza);
    }

    private bool _headerSent;

    private async Task WriteHeaderAsync(string from, string? to, string id)
    {
        _headerSent = true;
        await _wire!.WriteHeaderAsync(from, to, id, _cts.Token);
    }

    private async Task FailAsync(string condition, string? text)
    {
        if (_wire is null) return;
        _s.Logger.LogInformation("s2s inbound from {Ip} ({Domain}): closing with {Condition}{Text}", RemoteAddress, _headerFrom ?? "?", condition,
            text is null ? "" : ": " + text);
        if (_directTls && !_wire.IsSecure)
        {
            // Still in (or before) the TLS handshake of the direct TLS port: XML would only be noise to the peer.
            try { _cts.Cancel(); } catch (ObjectDisposedException) { }
            return;
        }
        // RFC 6120 §4.9.1.2: a stream error goes inside a stream, so a peer that never sent its header (a silent or slow
        // connection timing out) gets ours first; before a direct TLS handshake nothing can be said.
        if (!_headerSent)
        {
            try { await WriteHeaderAsync(_s.Domains.Default, null, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12))); }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException) { }
        }
        await _wire.CloseStreamAsync(StreamErrors.Create(condition, text));
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
    }
}
