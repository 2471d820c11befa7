using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules;

namespace Xmpp.Server.Streams;

public sealed partial class XmppStream
{
    private byte[]? _channelBinding;

    /// Runs the TLS handshake over the raw transport and swaps the stream's pipes for TLS ones,
    /// as Kestrel's HTTPS middleware does (RFC 6120 §5.4.3.3; XEP-0368 for direct TLS with ALPN xmpp-client).
    private async ValueTask<bool> StartTlsAsync(string[]? alpn)
    {
        SslStream? ssl = null;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(_s.Options.Limits.TlsHandshakeTimeoutSeconds));
            // COMPAT(go-sendxmpp): whitespace after <starttls/> is legal between elements, but it must not reach TLS.
            if (!_directTls && !await SkipWhitespaceAsync(_input, timeout.Token)) return false;
            // TLS runs on the transport's raw stream, which gives SslStream first what the plain reader still holds.
            ssl = new SslStream(_transport.TakeForTls(), leaveInnerStreamOpen: false);
            // The selector keeps each certificate's intermediates in the handshake, whatever SNI picks.
            await ssl.AuthenticateAsServerAsync(_s.Certificates.CreateServerOptionsSelector(alpn), null, timeout.Token);
        }
        catch (Exception ex)
        {
            _s.Logger.LogDebug("TLS handshake with {Ip} failed: {Message}", RemoteAddress, ex.Message);
            if (ssl is not null) await ssl.DisposeAsync();
            return false;
        }
        // RFC 9325 §4.2: a context that shares OpenSSL state across connections is restricted to our suites when it is
        // made (Tls/SharedTlsContexts.cs); this holds it for any connection that got past that.
        if (!Tls.SharedTlsContexts.IsAllowed(ssl))
        {
            _s.Logger.LogWarning("TLS handshake with {Ip} negotiated {Suite}, which is not among ours; connection refused", RemoteAddress, ssl.NegotiatedCipherSuite);
            await ssl.DisposeAsync();
            return false;
        }
        _ssl = ssl;
        _s.Metrics.Handshake(started, Tls.SharedTlsContexts.IsResumed(ssl));
        // OpenSSL's record buffers (~34 KiB) are given back whenever the connection has nothing in flight.
        Tls.OpenSslBuffers.ReleaseWhenIdle(ssl, _s.Logger);
        // Zero-byte reads: an idle connection waits for data without holding a buffer, here or in SslStream (which
        // then waits with a zero-byte read on the transport); both buffers are rented only when bytes arrive.
        _input = PipeReader.Create(ssl, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
        _output = PipeWriter.Create(ssl, new StreamPipeWriterOptions(minimumBufferSize: 4096, leaveOpen: true));
        // RFC 6120 §5.4.3.3: after TLS both sides start a new stream.
        _parser.Reset();
        _state = StreamState.Negotiating;
        _headerSent = false;
        if (ssl.TargetHostName is { Length: > 0 } sni && Jid.TryParse(sni, out var sniJid) && _s.Domains.Contains(sniJid.Domain))
            _domain = sniJid.Domain;
        return true;
    }

    /// Consumes whitespace before the TLS ClientHello; false when the peer closed instead.
    private static async ValueTask<bool> SkipWhitespaceAsync(PipeReader input, CancellationToken ct)
    {
        while (true)
        {
            var result = await input.ReadAsync(ct);
            var buffer = result.Buffer;
            var reader = new SequenceReader<byte>(buffer);
            reader.AdvancePastAny((byte)' ', (byte)'\t', (byte)'\r', (byte)'\n');
            bool found = !reader.End;
            input.AdvanceTo(reader.Position, found ? reader.Position : buffer.End);
            if (found) return true;
            if (result.IsCompleted) return false;
        }
    }

    /// tls-server-end-point channel binding data for this connection (RFC 5929 §4).
    private byte[]? ChannelBindingData()
    {
        if (_channelBinding is not null) return _channelBinding;
        if (_ssl?.LocalCertificate is not { } local) return null;
        var cert = local as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(local.GetRawCertData());
        // Certificates whose signature hash RFC 5929 cannot name (Ed25519) simply get no -PLUS mechanisms.
        return ChannelBinding.TryTlsServerEndPoint(cert, out var data) ? _channelBinding = data : null;
    }

    /// XEP-0440 types offered on this connection, or null when no -PLUS mechanism is (SASL2 lists them). .NET exposes
    /// no tls-exporter, and tls-unique does not exist under TLS 1.3 (RFC 9266), so tls-server-end-point is the only one.
    private IReadOnlyList<string>? AdvertisedChannelBindingTypes() =>
        IsSecure && ChannelBindingData() is not null ? [ChannelBinding.TlsServerEndPointName] : null;

    /// The mechanisms of one SASL profile, strongest first. -PLUS needs channel-binding data (RFC 5802 §6), and a
    /// client must know which binding type to use. Without XEP-0440 that is the default type: tls-unique up to
    /// TLS 1.2 (RFC 5802 §6, RFC 5929 §3) and tls-exporter from TLS 1.3 (RFC 9266 §3), neither of which this server
    /// has. RFC 6120 SASL clients that do not read XEP-0440 (slixmpp 1.8) bind with tls-unique as soon as they see
    /// -PLUS, because RFC 5802 §6 says a binding client MUST take it, and then fail once per -PLUS mechanism. So RFC 6120 SASL lists no -PLUS and such a client logs in with flag 'y' on the first try; XEP-0388
    /// SASL2, which the clients that read XEP-0440 use when offered (Conversations, Gajim), lists -PLUS with
    /// tls-server-end-point, announced in the XEP-0440 feature.
    private IEnumerable<string> OfferedMechanisms(bool sasl2)
    {
        bool plus = sasl2 && IsSecure && ChannelBindingData() is not null;
        if (plus)
            foreach (var hash in ScramHashes.All) yield return ScramHashes.MechanismName(hash, plus: true);
        foreach (var hash in ScramHashes.All)
            yield return ScramHashes.MechanismName(hash, plus: false);
        // PLAIN only ever over TLS (RFC 6120 §13.9.4).
        if (IsSecure && _s.Options.Auth.AllowPlain) yield return "PLAIN";
    }

    /// resumed: a SASL2 &lt;success/&gt; carried &lt;resumed/&gt;, whose session this stream takes over only after
    /// these features went out.
    private Element BuildFeatures(bool resumed = false)
    {
        var features = new Element("features", Ns.Streams);
        bool authenticated = _state is StreamState.Authenticated or StreamState.Bound;
        var context = new StreamFeatureContext(IsSecure, authenticated, _domain,
            IsStreamManaged: resumed || _session?.StreamManagement is not null);
        if (authenticated)
        {
            // After XEP-0386 Bind 2 the resource is already bound: only the session's own features remain.
            if (_state == StreamState.Authenticated)
            {
                features.Add(new Element("bind", Ns.Bind));
                // RFC 6121 Appendix E: the legacy session feature, marked optional.
                features.Add(new Element("session", Ns.Session).Add(new Element("optional", Ns.Session)));
            }
            foreach (var f in _s.Modules.StreamFeatures(StreamFeatureStage.PostAuth, context)) features.Add(f);
            return features;
        }
        if (!IsSecure)
        {
            var starttls = new Element("starttls", Ns.Tls);
            if (_s.Options.RequireEncryption) starttls.Add(new Element("required", Ns.Tls));
            features.Add(starttls);
            if (_s.Options.RequireEncryption) return features;
        }
        var mechanisms = new Element("mechanisms", Ns.Sasl);
        foreach (var m in OfferedMechanisms(sasl2: false))
            mechanisms.Add(new Element("mechanism", Ns.Sasl).SetText(m));
        features.Add(mechanisms);
        if (AdvertisedChannelBindingTypes() is { } types)
        {
            // XEP-0440: the channel-binding types the -PLUS mechanisms can use on this connection.
            var cb = new Element("sasl-channel-binding", Ns.SaslChannelBinding);
            foreach (var type in types) cb.Add(new Element("channel-binding", Ns.SaslChannelBinding).SetAttr("type", type));
            features.Add(cb);
        }
        if (IsSecure) features.Add(Sasl2Feature());
        foreach (var f in _s.Modules.StreamFeatures(StreamFeatureStage.PreAuth, context)) features.Add(f);
        return features;
    }
}
