using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Http;

/// Xmpp:Http:MaxConnectionsPerIp: concurrent connections one address may hold on the HTTPS listener. Kestrel has only a
/// server-wide limit, so one address could otherwise take every connection (idle keep-alives, held BOSH requests,
/// TLS handshakes). A connection over the limit is closed as soon as it is accepted, before its TLS handshake costs
/// anything, and counted in xmppd_limits_refused_total{limit="http-connections-per-ip"}.
public sealed class HttpConnectionLimit
{
    private readonly ConcurrentDictionary<IPAddress, int> _open = new();
    private readonly int _max;
    private readonly bool _exemptLoopback;
    private readonly Metrics.ServerMetrics? _metrics;
    private readonly ILogger _logger;

    private HttpConnectionLimit(HttpOptions options, Metrics.ServerMetrics? metrics, ILogger logger)
    {
        _max = options.MaxConnectionsPerIp;
        _exemptLoopback = options.ExemptLoopback;
        _metrics = metrics;
        _logger = logger;
    }

    /// Adds the limit in front of everything else on the listener (before TLS); nothing when the limit is 0.
    public static void Use(IConnectionBuilder listener, HttpOptions options)
    {
        if (options.MaxConnectionsPerIp <= 0) return;
        var services = listener.ApplicationServices;
        var limit = new HttpConnectionLimit(options, services.GetService<Metrics.ServerMetrics>(),
            services.GetRequiredService<ILoggerFactory>().CreateLogger<HttpConnectionLimit>());
        listener.Use(next => connection => limit.HandleAsync(connection, next));
    }

    private async Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (connection.RemoteEndPoint is not IPEndPoint { Address: var address } || _exemptLoopback && IPAddress.IsLoopback(address))
        {
            await next(connection);
            return;
        }
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (_open.AddOrUpdate(address, 1, static (_, n) => n + 1) > _max)
        {
            Release(address);
            _metrics?.Refuse("http-connections-per-ip");
            _logger.LogWarning("HTTPS connection from {Ip} closed: {Max} connections from this address are open already (Xmpp:Http:MaxConnectionsPerIp)",
                address, _max);
            connection.Abort(new ConnectionAbortedException("Too many connections from this address"));
            return;
        }
        try
        {
            await next(connection);
        }
        finally
        {
            Release(address);
        }
    }

    private void Release(IPAddress address)
    {
        // Decrement, and forget the address when its last connection ends, so the table holds only addresses in use.
        while (true)
        {
            if (!_open.TryGetValue(address, out var n)) return;
            if (n <= 1)
            {
                if (_open.TryRemove(new KeyValuePair<IPAddress, int>(address, n))) return;
            }
            else if (_open.TryUpdate(address, n - 1, n)) return;
        }
    }
}
