using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Proxy65;

/// The SOCKS5 side of the XEP-0065 proxy (RFC 1928 as profiled by XEP-0065 §8): no authentication, CONNECT to a
/// DOMAINNAME that is the bytestream's hash, port 0. The connection then waits for its partner and the activation.
public sealed class Socks5ConnectionHandler(BytestreamRelay relay, XmppServerOptions options, ILogger<Socks5ConnectionHandler> logger) : ConnectionHandler
{
    private const byte Version = 5;
    private const byte NoAuthentication = 0, NoAcceptableMethods = 0xFF;
    private const byte Connect = 1, DomainName = 3;
    private const byte Succeeded = 0, NotAllowed = 2, CommandNotSupported = 7, AddressTypeNotSupported = 8;

    // Greetings and requests are a few hundred bytes at most; a peer that sends more or dawdles is dropped.
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(30);

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        string? address;
        using (var handshake = new CancellationTokenSource(HandshakeTimeout))
        {
            try
            {
                address = await HandshakeAsync(input, output, handshake.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException or InvalidDataException)
            {
                logger.LogDebug("SOCKS5 handshake from {Remote} failed: {Message}", connection.RemoteEndPoint, e.Message);
                return;
            }
        }
        if (address is null) return;

        var admission = relay.Join(address, connection, out var waiter);
        if (admission != BytestreamRelay.Admission.Accepted)
        {
            logger.LogInformation("SOCKS5 connection from {Remote} refused: {Reason}", connection.RemoteEndPoint, admission);
            await ReplyAsync(output, NotAllowed, address);
            return;
        }
        await ReplyAsync(output, Succeeded, address);
        Task relaying;
        try
        {
            relaying = await waiter!.Activated.WaitAsync(TimeSpan.FromSeconds(options.Proxy65.ActivationTimeoutSeconds), connection.ConnectionClosed);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            relay.Leave(address, waiter!);
            // Activation may have raced with the timeout; then the relay owns the connection now.
            if (!waiter!.Activated.IsCompletedSuccessfully) return;
            relaying = waiter.Activated.Result;
        }
        await relaying;
    }

    // RFC 1928 §3 and §4. Returns the DST.ADDR, or null after answering a request the proxy does not serve.
    private static async Task<string?> HandshakeAsync(PipeReader input, PipeWriter output, CancellationToken ct)
    {
        var greeting = await ReadAsync(input, 2, ct);
        if (greeting[0] != Version) throw new InvalidDataException("not SOCKS5");
        var methods = await ReadAsync(input, greeting[1], ct);
        if (Array.IndexOf(methods, NoAuthentication) < 0)
        {
            await output.WriteAsync(new[] { Version, NoAcceptableMethods }, ct);
            return null;
        }
        await output.WriteAsync(new[] { Version, NoAuthentication }, ct);

        var request = await ReadAsync(input, 5, ct); // VER CMD RSV ATYP and the first address byte (its length)
        if (request[0] != Version) throw new InvalidDataException("not SOCKS5");
        if (request[3] != DomainName)
        {
            await output.WriteAsync(new byte[] { Version, AddressTypeNotSupported, 0, 1, 0, 0, 0, 0, 0, 0 }, ct);
            return null;
        }
        var rest = await ReadAsync(input, request[4] + 2, ct); // DST.ADDR and DST.PORT
        var address = System.Text.Encoding.ASCII.GetString(rest, 0, request[4]);
        if (request[1] != Connect)
        {
            await ReplyAsync(output, CommandNotSupported, address);
            return null;
        }
        return address;
    }

    private static async Task ReplyAsync(PipeWriter output, byte status, string address)
    {
        // XEP-0065 §5.3.2: the reply echoes the DOMAINNAME address and port 0.
        var bytes = new byte[7 + address.Length];
        bytes[0] = Version;
        bytes[1] = status;
        bytes[3] = DomainName;
        bytes[4] = (byte)address.Length;
        System.Text.Encoding.ASCII.GetBytes(address, bytes.AsSpan(5));
        try { await output.WriteAsync(bytes); }
        catch (Exception e) when (e is IOException or ConnectionResetException or InvalidOperationException) { }
    }

    private static async Task<byte[]> ReadAsync(PipeReader input, int count, CancellationToken ct)
    {
        while (true)
        {
            var result = await input.ReadAsync(ct);
            var buffer = result.Buffer;
            if (buffer.Length >= count)
            {
                var bytes = buffer.Slice(0, count).ToArray();
                input.AdvanceTo(buffer.GetPosition(count));
                return bytes;
            }
            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) throw new InvalidDataException("connection closed during the SOCKS5 handshake");
        }
    }
}
