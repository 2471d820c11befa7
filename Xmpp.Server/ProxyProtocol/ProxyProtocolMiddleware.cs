using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.ProxyProtocol;

/// Connection middleware in front of a listener (before TLS and before any limit): a connection from a trusted proxy
/// must start with a PROXY header, whose source address then replaces the connection's remote endpoint for
/// everything after it. The header is read with a deadline and a size limit; a bad or missing one closes the
/// connection with a log line. A connection from any other address passes untouched: its bytes are never read as a
/// header, so it cannot claim an address (proxy-protocol.txt §1 forbids guessing from the content; HAProxy's own
/// "tcp-request connection expect-proxy" keyed by source address is the same rule).
public sealed class ProxyProtocolMiddleware
{
    private readonly IPNetwork[] _trusted;
    private readonly TimeSpan _timeout;
    private readonly string _listener;
    private readonly Metrics.ServerMetrics? _metrics;
    private readonly ILogger _logger;

    private ProxyProtocolMiddleware(IPNetwork[] trusted, TimeSpan timeout, string listener, Metrics.ServerMetrics? metrics, ILogger logger)
    {
        _trusted = trusted;
        _timeout = timeout;
        _listener = listener;
        _metrics = metrics;
        _logger = logger;
    }

    /// Adds the middleware to a Kestrel listener; nothing when no proxy is trusted. Call it before every other Use.
    public static void Use(IConnectionBuilder listener, ProxyProtocolOptions options, string listenerName)
    {
        if (Create(options, listenerName, listener.ApplicationServices) is not { } middleware) return;
        listener.Use(next => connection => middleware.HandleAsync(connection, next));
    }

    /// The header reader for one listener (Kestrel's or the c2s listener's); null when no proxy is trusted.
    public static ProxyProtocolMiddleware? Create(ProxyProtocolOptions options, string listenerName, IServiceProvider services)
    {
        if (options.TrustedProxies.Count == 0) return null;
        var trusted = options.TrustedProxies.Select(e => ProxyProtocolOptions.TryParseNetwork(e, out var n)
            ? n : throw new ArgumentException($"'{e}' is not an address or CIDR range")).ToArray();
        return new ProxyProtocolMiddleware(trusted, TimeSpan.FromMilliseconds(options.HeaderTimeoutMilliseconds), listenerName,
            services.GetService<Metrics.ServerMetrics>(), services.GetRequiredService<ILoggerFactory>().CreateLogger<ProxyProtocolMiddleware>());
    }

    internal bool IsTrusted(EndPoint? remote)
    {
        if (remote is not IPEndPoint { Address: var address }) return false;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var network in _trusted)
            if (network.Contains(address)) return true;
        return false;
    }

    private async Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (!IsTrusted(connection.RemoteEndPoint))
        {
            await next(connection);
            return;
        }
        if (await AcceptHeaderAsync(connection.Transport.Input, connection.RemoteEndPoint, connection.ConnectionClosed) is not { } header)
        {
            connection.Abort(new ConnectionAbortedException("Bad PROXY protocol header"));
            return;
        }
        if (header.Source is { } source)
        {
            connection.RemoteEndPoint = source;
            if (header.Destination is { } destination) connection.LocalEndPoint = destination;
        }
        await next(connection);
    }

    /// Reads the header a trusted proxy sends first; null (logged and counted) when the connection must be closed.
    /// The bytes after the header stay in the input, unexamined, for whoever reads next.
    internal async Task<ProxyHeader?> AcceptHeaderAsync(PipeReader input, EndPoint? proxy, CancellationToken closed)
    {
        var (header, problem) = await ReadHeaderAsync(input, closed);
        if (problem is not null)
        {
            _metrics?.Refuse("proxy-protocol-header");
            _logger.LogWarning("Connection from proxy {Proxy} on the {Listener} listener closed: {Problem}", proxy, _listener, problem);
            return null;
        }
        _logger.LogDebug("PROXY v{Version} header from {Proxy} on the {Listener} listener: client {Client}", header.Version, proxy, _listener,
            header.Source?.ToString() ?? (header.Local ? "LOCAL (the proxy itself)" : "unknown (the proxy's address is kept)"));
        return header;
    }

    private async Task<(ProxyHeader Header, string? Problem)> ReadHeaderAsync(PipeReader input, CancellationToken closed)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(closed);
        deadline.CancelAfter(_timeout);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(deadline.Token);
                var buffer = result.Buffer;
                var consumed = buffer.Start;
                var examined = buffer.End;
                try
                {
                    switch (ProxyHeaderParser.TryParse(buffer, out var header, out var length, out var error))
                    {
                        case ProxyParseStatus.Done:
                            // examined = consumed: the bytes after the header are the client's and are read next, at once.
                            consumed = examined = buffer.GetPosition(length);
                            return (header, null);
                        case ProxyParseStatus.Invalid:
                            return (default, "malformed PROXY protocol header (" + error + ")");
                    }
                    if (result.IsCompleted || result.IsCanceled) return (default, $"closed after {buffer.Length} bytes, before a complete PROXY protocol header");
                }
                finally
                {
                    input.AdvanceTo(consumed, examined);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return (default, $"no complete PROXY protocol header within {_timeout.TotalMilliseconds} ms");
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException)
        {
            return (default, "read failed before a complete PROXY protocol header: " + ex.Message);
        }
    }
}
