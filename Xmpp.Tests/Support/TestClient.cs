using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

public enum TlsMode { None, StartTls, Direct }

/// Our own minimal XMPP client for protocol tests: real TCP and TLS sockets, step-by-step negotiation for guard
/// tests, and after binding a background reader that buffers stanzas for ReceiveAsync.
public sealed class TestClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly TcpClient _tcp;
    private readonly string _domain;
    private Stream _stream;
    private PipeReader _reader;
    private readonly XmppStreamParser _parser = new(new ParserLimits { MaxStanzaBytes = 64 * 1024 * 1024 });
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private Channel<Element>? _incoming;
    private readonly List<Element> _pending = [];
    private Task? _readLoop;
    private int _nextId;

    private TestClient(TcpClient tcp, string domain)
    {
        _tcp = tcp;
        _domain = domain;
        _stream = tcp.GetStream();
        _reader = PipeReader.Create(_stream);
    }

    public Jid? Jid { get; private set; }
    public Element? Features { get; private set; }
    public Element? ServerHeader { get; private set; }
    public SslStream? Tls => _stream as SslStream;
    public System.Net.Sockets.Socket Socket => _tcp.Client;
    public bool StreamEnded { get; private set; }

    /// Connects and completes negotiation: TLS, SASL, bind, and optionally initial presence.
    public static async Task<TestClient> ConnectAsync(ServerEndpoint server, string user, string password, string? resource = null,
        TlsMode tls = TlsMode.StartTls, string mechanism = "SCRAM-SHA-256", bool sendPresence = false)
    {
        var client = await OpenAsync(server, tls);
        await client.AuthenticateAsync(user, password, mechanism);
        await client.BindAsync(resource);
        client.StartReading();
        if (sendPresence)
        {
            await client.SendAsync(new Element("presence", Ns.Client));
        }
        return client;
    }

    /// Connects and negotiates up to the post-TLS stream features (or the first features, with TlsMode.None).
    public static async Task<TestClient> OpenAsync(ServerEndpoint server, TlsMode tls = TlsMode.StartTls)
    {
        var tcp = await ConnectTcpAsync(server, tls == TlsMode.Direct ? server.C2sTlsPort : server.C2sPort);
        var client = new TestClient(tcp, server.Domain);
        if (tls == TlsMode.Direct) await client.HandshakeAsync(["xmpp-client"]);
        await client.OpenStreamAsync();
        if (tls == TlsMode.StartTls)
        {
            await client.StartTlsAsync();
            await client.OpenStreamAsync();
        }
        return client;
    }

    /// Only the TCP connection, nothing sent: for tests that speak raw XML from the first byte.
    public static async Task<TestClient> ConnectRawAsync(ServerEndpoint server, bool directTls = false)
    {
        var tcp = await ConnectTcpAsync(server, directTls ? server.C2sTlsPort : server.C2sPort);
        var client = new TestClient(tcp, server.Domain);
        if (directTls) await client.HandshakeAsync(["xmpp-client"]);
        return client;
    }

    private static async Task<TcpClient> ConnectTcpAsync(ServerEndpoint server, int port)
    {
        var tcp = server.LocalAddress is { } local ? new TcpClient(new System.Net.IPEndPoint(local, 0)) : new TcpClient();
        await tcp.ConnectAsync(server.Host, port);
        if (server.Preamble is { } preamble) await tcp.GetStream().WriteAsync(preamble);
        return tcp;
    }

    public async Task<Element> OpenStreamAsync(string? to = null)
    {
        await SendRawAsync($"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{to ?? _domain}' version='1.0' xml:lang='en'>");
        var (kind, header) = await ReadItemAsync();
        if (kind != XmlItemKind.StreamHeader) throw new InvalidOperationException($"expected a stream header, got {kind} {header}");
        ServerHeader = header;
        var features = await ReadElementAsync();
        if (!features.Is("features", Ns.Streams)) throw new InvalidOperationException($"expected features, got {features}");
        Features = features;
        return features;
    }

    /// The stream restart after SASL success (RFC 6120 §6.4.6): a new header, and the server's header and features.
    public Task<Element> RestartStreamAsync()
    {
        _parser.Reset();
        return OpenStreamAsync();
    }

    public async Task StartTlsAsync(string trailing = "")
    {
        await SendRawAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + trailing);
        var proceed = await ReadElementAsync();
        if (!proceed.Is("proceed", Ns.Tls)) throw new InvalidOperationException($"expected proceed, got {proceed}");
        await HandshakeAsync(null);
    }

    private async Task HandshakeAsync(string[]? alpn)
    {
        var ssl = new SslStream(_tcp.GetStream(), leaveInnerStreamOpen: true);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = _domain,
            RemoteCertificateValidationCallback = (_, _, _, _) => true, // the test server's certificate is self-signed
            ApplicationProtocols = alpn?.Select(a => new SslApplicationProtocol(a)).ToList(),
        };
        await ssl.AuthenticateAsClientAsync(options);
        _stream = ssl;
        _reader = PipeReader.Create(ssl);
        _parser.Reset();
    }

    public IReadOnlyList<string> Mechanisms =>
        Features?.Child("mechanisms", Ns.Sasl)?.Elements("mechanism", Ns.Sasl).Select(m => m.Text).ToList() ?? [];

    /// Authenticates; throws with the failure element's condition on failure.
    public async Task AuthenticateAsync(string user, string password, string mechanism = "SCRAM-SHA-256")
    {
        var result = await TryAuthenticateAsync(user, password, mechanism);
        if (!result.Is("success", Ns.Sasl)) throw new AuthenticationFailedException(result);
        await RestartStreamAsync();
        Jid = Xmpp.Protocol.Jid.Create(user, _domain);
    }

    /// Runs one SASL exchange and returns the final success or failure element, without restarting the stream.
    public async Task<Element> TryAuthenticateAsync(string user, string password, string mechanism = "SCRAM-SHA-256")
    {
        if (mechanism == "PLAIN")
        {
            var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));
            await SendAsync(new Element("auth", Ns.Sasl).SetAttr("mechanism", "PLAIN").SetText(plain));
            return await ReadElementAsync();
        }
        if (!ScramHashes.TryParseMechanism(mechanism, out var hash, out var plus))
            throw new ArgumentException("unknown mechanism " + mechanism);
        byte[]? cbind = null;
        if (plus && Tls?.RemoteCertificate is { } cert)
            cbind = ChannelBinding.TlsServerEndPoint(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(cert.GetRawCertData()));
        var scram = new ScramClient(hash, user, password, cbind, serverSupportsPlus: Mechanisms.Any(m => m.EndsWith("-PLUS")));
        await SendAsync(new Element("auth", Ns.Sasl).SetAttr("mechanism", mechanism).SetText(Convert.ToBase64String(scram.ClientFirst())));
        var challenge = await ReadElementAsync();
        if (!challenge.Is("challenge", Ns.Sasl)) return challenge;
        var final = scram.ClientFinal(Convert.FromBase64String(challenge.Text));
        await SendAsync(new Element("response", Ns.Sasl).SetText(Convert.ToBase64String(final)));
        var outcome = await ReadElementAsync();
        if (outcome.Is("success", Ns.Sasl) && !scram.VerifyServerFinal(Convert.FromBase64String(outcome.Text)))
            throw new InvalidOperationException("server signature did not verify");
        return outcome;
    }

    public async Task BindAsync(string? resource)
    {
        var bind = new Element("bind", Ns.Bind);
        if (resource is not null) bind.Add(new Element("resource", Ns.Bind).SetText(resource));
        await SendAsync(new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("id", "bind1").Add(bind));
        var result = await ReadElementAsync();
        if (result.Attr("type") != "result") throw new InvalidOperationException("bind failed: " + result);
        Jid = Xmpp.Protocol.Jid.Parse(result.Child("bind", Ns.Bind)!.ChildText("jid", Ns.Bind)!);
    }

    public async Task SendRawAsync(string xml) => await SendBytesAsync(Encoding.UTF8.GetBytes(xml));

    public async Task SendBytesAsync(ReadOnlyMemory<byte> bytes)
    {
        await _writeLock.WaitAsync();
        try
        {
            await _stream.WriteAsync(bytes);
            await _stream.FlushAsync();
        }
        finally { _writeLock.Release(); }
    }

    public Task SendAsync(Element e) => SendBytesAsync(ElementWriter.ToBytes(e));

    public Task SendAsync(string xml) => SendAsync(X.Parse(xml));

    /// Reads the next item synchronously (before StartReading): header, element or stream end.
    public async Task<(XmlItemKind Kind, Element? Item)> ReadItemAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        return await ReadItemAsync(_reader, _parser, cts.Token);
    }

    /// The next header, element or end of stream from a pipe: the read loop of every raw test peer (clients, servers).
    internal static async Task<(XmlItemKind Kind, Element? Item)> ReadItemAsync(PipeReader reader, XmppStreamParser parser, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            XmlItemKind kind = XmlItemKind.NeedMoreData;
            Element? item;
            try
            {
                kind = parser.Parse(buffer, out var consumed, out item);
                buffer = buffer.Slice(consumed);
            }
            finally
            {
                // Bytes after a returned item are not examined yet: the next read must see them without new input.
                if (kind == XmlItemKind.NeedMoreData) reader.AdvanceTo(buffer.Start, buffer.End);
                else reader.AdvanceTo(buffer.Start);
            }
            if (kind != XmlItemKind.NeedMoreData) return (kind, item);
            if (result.IsCompleted) return (XmlItemKind.StreamEnd, null);
        }
    }

    public async Task<Element> ReadElementAsync(TimeSpan? timeout = null)
    {
        var (kind, item) = await ReadItemAsync(timeout);
        if (kind != XmlItemKind.Element) throw new InvalidOperationException($"expected an element, got {kind}");
        return item!;
    }

    /// Reads until the server closes: returns the stream error condition, or null for a clean close.
    public async Task<string?> ReadStreamErrorAsync(TimeSpan? timeout = null)
    {
        while (true)
        {
            var (kind, item) = await ReadItemAsync(timeout);
            if (kind == XmlItemKind.StreamEnd) return null;
            if (kind == XmlItemKind.Element && item!.Is("error", Ns.Streams))
                return item.FirstElement?.Name;
        }
    }

    /// After negotiation: a background task buffers everything the server sends.
    public void StartReading()
    {
        _incoming = Channel.CreateUnbounded<Element>();
        _readLoop = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var (kind, item) = await ReadItemAsync(Timeout.InfiniteTimeSpan);
                    if (kind == XmlItemKind.StreamEnd) break;
                    if (kind == XmlItemKind.Element) await _incoming.Writer.WriteAsync(item!);
                }
            }
            catch (Exception) { }
            finally
            {
                StreamEnded = true;
                _incoming.Writer.TryComplete();
            }
        });
    }

    /// The next received stanza that matches (others stay buffered for later calls).
    public async Task<Element> ReceiveAsync(Func<Element, bool>? match = null, TimeSpan? timeout = null)
    {
        match ??= _ => true;
        for (int i = 0; i < _pending.Count; i++)
        {
            if (!match(_pending[i])) continue;
            var e = _pending[i];
            _pending.RemoveAt(i);
            return e;
        }
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            while (true)
            {
                var e = await _incoming!.Reader.ReadAsync(cts.Token);
                if (match(e)) return e;
                _pending.Add(e);
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Jid}: nothing matching arrived; buffered: {string.Join(" | ", _pending)}");
        }
        catch (ChannelClosedException)
        {
            throw new IOException($"{Jid}: the stream ended; buffered: {string.Join(" | ", _pending)}");
        }
    }

    public Task<Element> ReceiveAsync(string name, TimeSpan? timeout = null) => ReceiveAsync(e => e.Name == name, timeout);

    /// Asserts that nothing matching arrives within the window.
    public async Task<Element?> TryReceiveAsync(Func<Element, bool>? match, TimeSpan window)
    {
        try { return await ReceiveAsync(match, window); }
        catch (TimeoutException) { return null; }
    }

    /// All stanzas received so far and within the window, in order.
    public async Task<List<Element>> DrainAsync(TimeSpan window)
    {
        var list = new List<Element>(_pending);
        _pending.Clear();
        while (await TryReceiveAsync(null, window) is { } e) list.Add(e);
        return list;
    }

    /// Sends an IQ with a fresh id and returns the server's result or error.
    public async Task<Element> IqAsync(Element iq, TimeSpan? timeout = null)
    {
        var id = "t" + Interlocked.Increment(ref _nextId);
        iq.SetAttr("id", id);
        await SendAsync(iq);
        return await ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == id && e.Attr("type") is "result" or "error", timeout);
    }

    public Task<Element> IqAsync(string xml, TimeSpan? timeout = null) => IqAsync(X.Parse(xml), timeout);

    /// Closes our stream and waits for the server's closing tag.
    public async Task CloseAsync()
    {
        try
        {
            await SendRawAsync("</stream:stream>");
            if (_readLoop is not null) await Task.WhenAny(_readLoop, Task.Delay(DefaultTimeout));
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        _tcp.Close();
    }

    /// Drops the TCP connection without closing the stream, like a phone losing its network.
    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Close();
    }

    public async ValueTask DisposeAsync()
    {
        _tcp.Close();
        if (_readLoop is not null) await Task.WhenAny(_readLoop, Task.Delay(1000));
        _writeLock.Dispose();
    }
}

public sealed class AuthenticationFailedException(Element failure)
    : Exception("authentication failed: " + failure)
{
    public string? Condition { get; } = failure.FirstElement?.Name;
}
