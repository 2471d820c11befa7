using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;

namespace Xmpp.Bench;

/// One client connection driven the way a real client drives it: TCP, STARTTLS or direct TLS (any certificate
/// accepted), SASL SCRAM-SHA-1, resource binding and initial presence, using Xmpp.Protocol's parser, serializer
/// and SCRAM client. After login a read loop (async, no thread of its own) hands every stanza to <see cref="OnStanza"/>.
public sealed partial class BenchClient : IAsyncDisposable
{
    private readonly Target _target;
    private readonly Socket _socket;
    private Stream _stream;
    private PipeReader _reader;
    private readonly XmppStreamParser _parser = new(new ParserLimits { MaxStanzaBytes = 16 * 1024 * 1024 });
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _out = new(512);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Element? _features;
    private int _disposed;

    private BenchClient(Target target, Socket socket)
    {
        _target = target;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = PipeReader.Create(_stream);
    }

    public string User { get; private set; } = "";

    /// The full JID the server bound, after <see cref="LoginAsync"/>.
    public string FullJid { get; private set; } = "";

    /// Called on a pool thread for every stanza received after login; must not block.
    public Action<BenchClient, Element>? OnStanza { get; set; }

    /// Completes when the server closes the stream or the connection drops.
    public Task Closed => _closed.Task;

    public static async Task<BenchClient> ConnectAsync(Target target, IPAddress? source, CancellationToken ct)
    {
        var socket = new Socket(target.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (source is not null)
            {
                // Pick the port at connect time, per destination: with many source addresses each gets its own
                // ephemeral range (Linux IP_BIND_ADDRESS_NO_PORT = 24).
                try { socket.SetRawSocketOption(0, 24, BitConverter.GetBytes(1)); } catch (SocketException) { }
                socket.Bind(new IPEndPoint(source, 0));
            }
            await socket.ConnectAsync(new IPEndPoint(target.Address, target.DirectTls ? target.TlsPort : target.Port), ct);
            var client = new BenchClient(target, socket);
            if (target.DirectTls) await client.HandshakeAsync(ct);
            await client.OpenStreamAsync(ct);
            if (!target.DirectTls)
            {
                if (client._features?.Child("starttls", Ns.Tls) is null)
                    throw new BenchException("the server does not offer STARTTLS");
                await client.SendRawAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"u8.ToArray(), ct);
                var proceed = await client.ReadElementAsync(ct);
                if (!proceed.Is("proceed", Ns.Tls)) throw new BenchException("STARTTLS refused: " + proceed);
                await client.HandshakeAsync(ct);
                await client.OpenStreamAsync(ct);
            }
            return client;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// Logs in on a fresh connection: TLS, SCRAM-SHA-1, bind, optional legacy session, initial presence.
    public static async Task<BenchClient> LoginAsync(Target target, IPAddress? source, string user, string password,
        string resource, bool presence, CancellationToken ct, Action<BenchClient>? configure = null)
    {
        var client = await ConnectAsync(target, source, ct);
        try
        {
            await client.AuthenticateAsync(user, password, ct);
            await client.BindAsync(resource, ct);
            if (target.Messenger)
            {
                configure?.Invoke(client);
                await client.MessengerSessionStartAsync(ct);
                return client;
            }
            if (target.StreamManagement) await client.EnableStreamManagementAsync(ct);
            // Handlers are set before the read loop starts, so nothing the server sends right away is missed.
            configure?.Invoke(client);
            client.StartReading();
            if (presence) await client.SendRawAsync("<presence/>"u8.ToArray(), ct);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// XEP-0077 §3.1 in-band registration on a fresh connection; true when created or already there.
    public static async Task<bool> RegisterAsync(Target target, IPAddress? source, string user, string password, CancellationToken ct)
    {
        await using var client = await ConnectAsync(target, source, ct);
        var iq = new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("id", "reg1")
            .Add(new Element("query", Ns.Register)
                .Add(new Element("username", Ns.Register).SetText(user))
                .Add(new Element("password", Ns.Register).SetText(password)));
        await client.SendAsync(iq, ct);
        var reply = await client.ReadElementAsync(ct);
        if (reply.Attr("type") == "result") return true;
        var error = reply.Child("error", Ns.Client);
        if (error?.Child("conflict", Ns.StanzaErrors) is not null) return true;
        throw new BenchException($"registration of {user} failed: {reply}");
    }

    private async Task AuthenticateAsync(string user, string password, CancellationToken ct)
    {
        var mechanisms = _features?.Child("mechanisms", Ns.Sasl)?.Elements("mechanism", Ns.Sasl).Select(m => m.Text).ToList() ?? [];
        // A messenger picks the strongest SCRAM the server offers, as Conversations and Gajim do (without -PLUS here).
        var hash = _target.Messenger && mechanisms.Contains("SCRAM-SHA-256") ? ScramHash.Sha256 : ScramHash.Sha1;
        if (hash == ScramHash.Sha1 && !mechanisms.Contains("SCRAM-SHA-1")) throw new BenchException("the server does not offer SCRAM-SHA-1");
        User = user;
        var scram = new ScramClient(hash, user, password, cbindData: null);
        await SendAsync(new Element("auth", Ns.Sasl).SetAttr("mechanism", scram.Mechanism)
            .SetText(Convert.ToBase64String(scram.ClientFirst())), ct);
        var challenge = await ReadElementAsync(ct);
        if (!challenge.Is("challenge", Ns.Sasl)) throw new BenchException($"SASL failed for {user}: {challenge}");
        var final = scram.ClientFinal(Convert.FromBase64String(challenge.Text));
        await SendAsync(new Element("response", Ns.Sasl).SetText(Convert.ToBase64String(final)), ct);
        var outcome = await ReadElementAsync(ct);
        // RFC 6120 §6.3.10: the additional data with success carries the server signature; some servers send it
        // in one more challenge instead, answered with an empty response.
        if (outcome.Is("challenge", Ns.Sasl))
        {
            if (!scram.VerifyServerFinal(Convert.FromBase64String(outcome.Text))) throw new BenchException("server signature did not verify");
            await SendAsync(new Element("response", Ns.Sasl), ct);
            outcome = await ReadElementAsync(ct);
            if (!outcome.Is("success", Ns.Sasl)) throw new BenchException($"SASL failed for {user}: {outcome}");
        }
        else if (!outcome.Is("success", Ns.Sasl)) throw new BenchException($"SASL failed for {user}: {outcome}");
        else if (!scram.VerifyServerFinal(Convert.FromBase64String(outcome.Text))) throw new BenchException("server signature did not verify");
        _parser.Reset();
        await OpenStreamAsync(ct);
    }

    private async Task BindAsync(string resource, CancellationToken ct)
    {
        await SendAsync(new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("id", "bind1")
            .Add(new Element("bind", Ns.Bind).Add(new Element("resource", Ns.Bind).SetText(resource))), ct);
        var result = await ReadElementAsync(ct);
        if (result.Attr("type") != "result") throw new BenchException("bind failed: " + result);
        FullJid = result.Child("bind", Ns.Bind)?.ChildText("jid", Ns.Bind) ?? throw new BenchException("bind result without jid");
        // RFC 6121 (and its predecessor RFC 3921 §3): only a session feature not marked optional needs the legacy IQ.
        var session = _features?.Child("session", Ns.Session);
        if (session is not null && session.Child("optional", Ns.Session) is null)
        {
            await SendAsync(new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("id", "sess1")
                .Add(new Element("session", Ns.Session)), ct);
            var r = await ReadElementAsync(ct);
            if (r.Attr("type") != "result") throw new BenchException("session failed: " + r);
        }
    }

    private static X509ChainPolicy UntrustedChainPolicy => new()
    {
        TrustMode = X509ChainTrustMode.CustomRootTrust,
        RevocationMode = X509RevocationMode.NoCheck,
        DisableCertificateDownloads = true,
    };

    private async Task HandshakeAsync(CancellationToken ct)
    {
        var ssl = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = _target.Domain,
            // Benchmarks run against self-signed certificates on loopback.
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
            // The callback accepts any certificate, but SslStream still builds a chain first; against the system trust
            // store that cost OpenSSL more CPU per handshake than the handshake itself (the generator shares the
            // cores with the server). An empty custom trust store keeps the build to the one certificate.
            CertificateChainPolicy = UntrustedChainPolicy,
            ApplicationProtocols = _target.DirectTls ? [new SslApplicationProtocol("xmpp-client")] : null,
            AllowTlsResume = _target.TlsResume,
        }, ct);
        _stream = ssl;
        // Zero-byte reads: 50,000 idle sessions in one generator process hold no read buffers while they wait.
        _reader = PipeReader.Create(ssl, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, useZeroByteReads: true));
        _parser.Reset();
    }

    private async Task OpenStreamAsync(CancellationToken ct)
    {
        await SendRawAsync(Encoding.UTF8.GetBytes(
            $"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{_target.Domain}' version='1.0' xml:lang='en'>"), ct);
        var (kind, header) = await ReadItemAsync(ct);
        if (kind != XmlItemKind.StreamHeader) throw new BenchException($"expected a stream header, got {kind} {header}");
        var features = await ReadElementAsync(ct);
        if (!features.Is("features", Ns.Streams)) throw new BenchException("expected stream features, got " + features);
        _features = features;
    }

    private async Task<Element> ReadElementAsync(CancellationToken ct)
    {
        var (kind, item) = await ReadItemAsync(ct);
        if (kind == XmlItemKind.Element && item!.Is("error", Ns.Streams))
            throw new BenchException("stream error: " + item);
        if (kind != XmlItemKind.Element) throw new BenchException($"expected an element, got {kind}");
        return item!;
    }

    private async Task<(XmlItemKind, Element?)> ReadItemAsync(CancellationToken ct)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(ct);
            var buffer = result.Buffer;
            var kind = XmlItemKind.NeedMoreData;
            Element? item;
            try
            {
                kind = _parser.Parse(buffer, out var consumed, out item);
                buffer = buffer.Slice(consumed);
            }
            finally
            {
                if (kind == XmlItemKind.NeedMoreData) _reader.AdvanceTo(buffer.Start, buffer.End);
                else _reader.AdvanceTo(buffer.Start);
            }
            if (kind != XmlItemKind.NeedMoreData) return (kind, item);
            if (result.IsCompleted) return (XmlItemKind.StreamEnd, null);
        }
    }

    private void StartReading() => _ = ReadLoopAsync();

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync();
                var buffer = result.Buffer;
                bool ended = false;
                try
                {
                    // Parse every complete item in this read before asking the pipe for more.
                    while (!ended)
                    {
                        var kind = _parser.Parse(buffer, out var consumed, out var item);
                        if (kind == XmlItemKind.NeedMoreData) { buffer = buffer.Slice(buffer.End); break; }
                        buffer = buffer.Slice(consumed);
                        if (kind == XmlItemKind.StreamEnd) ended = true;
                        else if (kind == XmlItemKind.Element) Dispatch(item!);
                    }
                }
                finally
                {
                    _reader.AdvanceTo(buffer.Start, buffer.End);
                }
                if (ended || result.IsCompleted) break;
            }
        }
        catch (Exception)
        {
            // A dropped connection ends the loop; scenarios notice through Closed and their counters.
        }
        finally
        {
            _closed.TrySetResult();
        }
    }

    // XEP-0198: stanzas handled since enabling (the h this client acknowledges), and whether it asks for acks.
    private int _handled;
    private bool _sm;

    private static readonly byte[] AckRequest = "<r xmlns='urn:xmpp:sm:3'/>"u8.ToArray();

    private async Task EnableStreamManagementAsync(CancellationToken ct, bool resume = false)
    {
        if (_features?.Child("sm", Ns.StreamManagement) is null) throw new BenchException("the server does not offer stream management");
        await SendRawAsync(resume ? "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"u8.ToArray() : "<enable xmlns='urn:xmpp:sm:3'/>"u8.ToArray(), ct);
        var reply = await ReadElementAsync(ct);
        if (!reply.Is("enabled", Ns.StreamManagement)) throw new BenchException("stream management refused: " + reply);
        _sm = true;
    }

    private void Dispatch(Element e)
    {
        if (_sm)
        {
            if (e.Namespace == Ns.StreamManagement)
            {
                // Answer the server's requests with the count (h wraps at 2^32, XEP-0198 §4); its acks need nothing.
                if (e.Name == "r")
                    _ = SendRawAsync(System.Text.Encoding.UTF8.GetBytes(
                        $"<a xmlns='urn:xmpp:sm:3' h='{(uint)Volatile.Read(ref _handled)}'/>"));
                return;
            }
            Interlocked.Increment(ref _handled);
        }
        if (CompleteRequest(e)) return;
        if (_target.Messenger && e.Name == "iq" && e.Attr("type") == "get" && e.Child("query", Ns.DiscoInfo) is { } query)
        {
            _ = SendAsync(DiscoInfoResult(e, query), CancellationToken.None);
            return;
        }
        // Answer server pings (XEP-0199) so idle sessions stay up; other IQ gets are not ours to serve.
        if (e.Name == "iq" && e.Attr("type") == "get")
        {
            var reply = new Element("iq", Ns.Client).SetAttr("type", e.Child("ping", Ns.Ping) is null ? "error" : "result")
                .SetAttr("id", e.Attr("id")).SetAttr("to", e.Attr("from"));
            if (reply.Attr("type") == "error")
                reply.Add(new Element("error", Ns.Client).SetAttr("type", "cancel")
                    .Add(new Element("service-unavailable", Ns.StanzaErrors)));
            _ = SendAsync(reply, CancellationToken.None);
            return;
        }
        OnStanza?.Invoke(this, e);
    }

    /// Serializes and writes one stanza; concurrent callers are serialized per connection.
    public async Task SendAsync(Element e, CancellationToken ct = default)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            _out.ResetWrittenCount();
            ElementWriter.Write(_out, e, Ns.Client);
            RequestAck();
            await _stream.WriteAsync(_out.WrittenMemory, ct);
        }
        finally { _writeLock.Release(); }
    }

    /// Serializes several stanzas into one write, as a client flushing a queue does.
    public async Task SendBatchAsync(IEnumerable<Element> stanzas, CancellationToken ct = default)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            _out.ResetWrittenCount();
            foreach (var e in stanzas) ElementWriter.Write(_out, e, Ns.Client);
            RequestAck();
            await _stream.WriteAsync(_out.WrittenMemory, ct);
        }
        finally { _writeLock.Release(); }
    }

    // With stream management on, each write of stanzas ends with an ack request, as a messenger asks after every
    // message so it can show the "sent" tick once the server has it.
    private void RequestAck()
    {
        if (_sm) _out.Write(AckRequest);
    }

    public async Task SendRawAsync(byte[] bytes, CancellationToken ct = default)
    {
        await _writeLock.WaitAsync(ct);
        try { await _stream.WriteAsync(bytes, ct); }
        finally { _writeLock.Release(); }
    }

    /// Sends an IQ ping to the server and waits for any reply: the server has handled everything sent before it.
    public async Task PingServerAsync(string id, CancellationToken ct)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var previous = OnStanza;
        OnStanza = (c, e) =>
        {
            if (e.Name == "iq" && e.Attr("id") == id) tcs.TrySetResult();
            else previous?.Invoke(c, e);
        };
        try
        {
            await SendAsync(new Element("iq", Ns.Client).SetAttr("type", "get").SetAttr("id", id).SetAttr("to", _target.Domain)
                .Add(new Element("ping", Ns.Ping)), ct);
            await tcs.Task.WaitAsync(ct);
        }
        finally { OnStanza = previous; }
    }

    /// Ends the stream politely and closes the socket without waiting for the server's reply.
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await SendRawAsync("</stream:stream>"u8.ToArray(), cts.Token);
        }
        catch (Exception) { }
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
        try { await _stream.DisposeAsync(); } catch (Exception) { }
    }
}

public sealed class BenchException(string message) : Exception(message);
