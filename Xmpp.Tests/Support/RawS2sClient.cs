using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// A hand-driven server-to-server stream for guard tests: it claims a domain, negotiates TLS, and authenticates (or
/// not) step by step, writing its XML by hand so the server's own s2s code is not on both ends.
public sealed class RawS2sClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly XmppStreamParser _parser = new(new ParserLimits { MaxStanzaBytes = 1024 * 1024 });
    private Stream _stream;
    private PipeReader _reader;

    private RawS2sClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _reader = PipeReader.Create(_stream);
    }

    public string StreamId { get; private set; } = "";
    public Element Features { get; private set; } = null!;

    /// Connects to the s2s port, opens a stream from → to and negotiates STARTTLS up to the features after it.
    public static async Task<RawS2sClient> ConnectAsync(int port, string from, string to, X509Certificate2? clientCertificate = null)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        var client = new RawS2sClient(tcp);
        await client.OpenAsync(from, to);
        if (client.Features.Child("starttls", Ns.Tls) is null) return client; // refused before TLS: the caller reads the error
        await client.SendRawAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        var proceed = await client.ReadElementAsync();
        if (!proceed.Is("proceed", Ns.Tls)) throw new InvalidOperationException("expected proceed, got " + proceed);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: true);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = to,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
        });
        client._stream = ssl;
        client._reader = PipeReader.Create(ssl);
        client._parser.Reset();
        await client.OpenAsync(from, to);
        return client;
    }

    public async Task OpenAsync(string from, string to)
    {
        await SendRawAsync($"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='{from}' to='{to}' version='1.0'>");
        var (kind, header) = await ReadItemAsync();
        if (kind != XmlItemKind.StreamHeader) throw new InvalidOperationException($"expected a stream header, got {kind}");
        StreamId = header!.Attr("id") ?? "";
        var features = await ReadElementAsync();
        // A refusal comes right after the header, where the features would have been (RFC 6120 §4.9.1.2).
        if (features.Is("error", Ns.Streams)) _error = features.FirstElement?.Name;
        Features = features;
    }

    private string? _error;

    /// XEP-0220 §2.1: the result the receiving server sends back: valid, invalid or error.
    public async Task<string?> DialbackAsync(string from, string to, string key)
    {
        await SendRawAsync($"<db:result from='{from}' to='{to}'>{key}</db:result>");
        while (true)
        {
            var e = await ReadElementAsync(TimeSpan.FromSeconds(20));
            if (e.Is("result", "jabber:server:dialback")) return e.Attr("type");
            if (e.Is("error", Ns.Streams)) return "stream-error:" + e.FirstElement?.Name;
        }
    }

    public async Task SendRawAsync(string xml)
    {
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(xml));
        await _stream.FlushAsync();
    }

    public async Task<(XmlItemKind Kind, Element? Item)> ReadItemAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        return await TestClient.ReadItemAsync(_reader, _parser, cts.Token);
    }

    public async Task<Element> ReadElementAsync(TimeSpan? timeout = null)
    {
        var (kind, item) = await ReadItemAsync(timeout);
        if (kind != XmlItemKind.Element) throw new InvalidOperationException($"expected an element, got {kind}");
        return item!;
    }

    /// Reads until the server ends the stream: its stream error condition, or null for a close without one.
    public async Task<string?> ReadStreamErrorAsync(TimeSpan? timeout = null)
    {
        if (_error is not null) return _error;
        while (true)
        {
            var (kind, item) = await ReadItemAsync(timeout);
            if (kind == XmlItemKind.StreamEnd) return null;
            if (kind == XmlItemKind.Element && item!.Is("error", Ns.Streams)) return item.FirstElement?.Name;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _stream.DisposeAsync(); } catch (IOException) { }
        _tcp.Dispose();
    }
}
