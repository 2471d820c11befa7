using System.Buffers;
using System.Collections.Concurrent;
using System.Formats.Asn1;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.Tls.Acme;

/// <summary>Answers tls-alpn-01 challenges (RFC 8737) on the direct TLS ports, in front of their normal handlers.</summary>
/// <remarks>
/// The CA connects offering only the ALPN protocol acme-tls/1 and expects a self-signed certificate for the name with
/// the acmeIdentifier extension (§3). .NET's certificate selection callback sees the SNI name but not the offered
/// protocols, so this connection middleware reads the first TLS record without consuming it, and only a ClientHello
/// offering acme-tls/1 alone for a name with a pending challenge is answered here; everything else goes on untouched.
/// With no challenge pending (all but a few seconds in sixty days) nothing is read at all.
/// </remarks>
public sealed class TlsAlpn01Responder(ILogger<TlsAlpn01Responder> logger)
{
    public const string Protocol = "acme-tls/1";
    private const string AcmeIdentifierOid = "1.3.6.1.5.5.7.1.31";
    private static readonly TimeSpan PeekTimeout = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, X509Certificate2> _pending = new(StringComparer.OrdinalIgnoreCase);

    /// Adds the tls-alpn-01 answer in front of a direct TLS listener when the ACME client uses that challenge.
    public static void Use(IConnectionBuilder listener)
    {
        if (listener.ApplicationServices.GetService<TlsAlpn01Responder>() is not { } responder) return;
        listener.Use(next => connection => responder.HandleAsync(connection, next));
    }

    public void Add(string name, string keyAuthorization)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        // RFC 8737 §3: critical, its value the DER OCTET STRING of SHA-256(key authorization).
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteOctetString(SHA256.HashData(Encoding.ASCII.GetBytes(keyAuthorization)));
        request.CertificateExtensions.Add(new X509Extension(AcmeIdentifierOid, writer.Encode(), critical: true));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        // Through PKCS#12, so the key belongs to the certificate as SslStream wants it (see CertificateLoader).
        var certificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
        if (_pending.TryGetValue(name, out var old)) old.Dispose();
        _pending[name] = certificate;
    }

    public void Remove(string name)
    {
        if (_pending.TryRemove(name, out var certificate)) certificate.Dispose();
    }

    private async Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (!await TryAnswerAsync(connection.Transport.Input, () => new Streams.DuplexPipeStream(connection.Transport),
                connection.RemoteEndPoint, connection.ConnectionClosed))
            await next(connection);
    }

    /// Answers the connection when its ClientHello is a pending challenge's (true: the caller closes it); otherwise
    /// nothing is consumed and the connection goes on. transport gives the raw byte stream for the challenge's TLS.
    internal async Task<bool> TryAnswerAsync(PipeReader input, Func<Stream> transport, EndPoint? remote, CancellationToken closed)
    {
        if (_pending.IsEmpty || await PeekAsync(input, closed) is not { } hello
            || hello.Protocols is not [Protocol] || hello.ServerName is null || !_pending.TryGetValue(hello.ServerName, out var certificate))
            return false;
        await using var ssl = new SslStream(transport());
        try
        {
            using var timeout = new CancellationTokenSource(PeekTimeout);
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = certificate,
                ApplicationProtocols = [new SslApplicationProtocol(Protocol)],
            }, timeout.Token);
            logger.LogInformation("ACME: answered the tls-alpn-01 challenge for {Name} from {Remote}", hello.ServerName, remote);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            logger.LogWarning("ACME: a tls-alpn-01 handshake for {Name} failed: {Error}", hello.ServerName, e.Message);
        }
        return true;
    }

    internal sealed record Hello(string? ServerName, IReadOnlyList<string> Protocols);

    /// Reads until the first TLS record is complete, and leaves it all unconsumed for the real handshake.
    private static async Task<Hello?> PeekAsync(PipeReader input, CancellationToken closed)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(closed);
        timeout.CancelAfter(PeekTimeout);
        while (true)
        {
            ReadResult read;
            try { read = await input.ReadAsync(timeout.Token); }
            catch (OperationCanceledException) { return null; }
            var buffer = read.Buffer;
            var parsed = ParseClientHello(buffer, out bool complete);
            bool done = complete || read.IsCompleted || buffer.Length > 5 + 16384;
            // Done: nothing consumed nor examined, so the next reader (the real handshake) gets these bytes at once.
            // Not yet: examined to the end, so the next read waits for more.
            if (done) input.AdvanceTo(buffer.Start);
            else input.AdvanceTo(buffer.Start, buffer.End);
            if (done) return parsed;
        }
    }

    /// SNI (RFC 6066 §3) and ALPN (RFC 7301 §3.1) of a ClientHello in the first TLS record; null when it is not one.
    internal static Hello? ParseClientHello(ReadOnlySequence<byte> buffer, out bool complete)
    {
        complete = false;
        if (buffer.Length < 5) return null;
        Span<byte> header = stackalloc byte[5];
        buffer.Slice(0, 5).CopyTo(header);
        if (header[0] != 0x16) { complete = true; return null; }
        int recordLength = header[3] << 8 | header[4];
        if (buffer.Length < 5 + recordLength) return null;
        complete = true;
        var r = new Reader(buffer.Slice(5, recordLength).ToArray());
        if (r.U8() != 1) return null;
        r.Skip(3 + 2 + 32);
        r.Skip(r.U8());
        r.Skip(r.U16());
        r.Skip(r.U8());
        if (r.Left < 2) return new Hello(null, []);
        var extensions = new Reader(r.Bytes(r.U16()));
        string? name = null;
        var protocols = new List<string>();
        while (extensions.Left >= 4)
        {
            int type = extensions.U16();
            var data = new Reader(extensions.Bytes(extensions.U16()));
            if (type == 0 && data.Left >= 2)
            {
                var list = new Reader(data.Bytes(data.U16()));
                while (list.Left >= 3)
                {
                    int kind = list.U8();
                    var value = list.Bytes(list.U16());
                    if (kind == 0) name = Encoding.ASCII.GetString(value);
                }
            }
            else if (type == 16 && data.Left >= 2)
            {
                var list = new Reader(data.Bytes(data.U16()));
                while (list.Left >= 1) protocols.Add(Encoding.ASCII.GetString(list.Bytes(list.U8())));
            }
        }
        return new Hello(name, protocols);
    }

    /// Bounds-checked reads: a truncated or lying length ends the parse with what was read (bytes past the end are empty).
    private sealed class Reader(byte[] data)
    {
        private int _at;
        public int Left => data.Length - _at;
        public int U8() => Left >= 1 ? data[_at++] : 0;
        public int U16() => Left >= 2 ? data[_at++] << 8 | data[_at++] : 0;
        public void Skip(int n) => _at = Math.Min(data.Length, _at + n);
        public byte[] Bytes(int n)
        {
            n = Math.Min(n, Left);
            var bytes = data.AsSpan(_at, n).ToArray();
            _at += n;
            return bytes;
        }
    }
}
