using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Streams;

/// One loop for all connections: closes streams that never authenticate, pings quiet sessions (XEP-0199 §4.1 server
/// to client) and closes the dead ones, sends whitespace keepalives, and prunes the login throttle table.
public sealed class ConnectionSweeper(ConnectionTracker connections, XmppServerOptionsAccessor options, AuthThrottle throttle, TimeProvider time,
    ILogger<ConnectionSweeper> logger)
    : BackgroundService
{
    private readonly Dictionary<XmppStream, long> _pinged = new();
    private readonly DisconnectWaveCollector _wave = new();

    public static TimeSpan Interval(XmppServerOptions o)
    {
        var seconds = new[] { o.Limits.UnauthenticatedTimeoutSeconds, o.Ping.IdleSeconds, o.Ping.TimeoutSeconds, o.Ping.WhitespaceKeepaliveSeconds }
            .Where(s => s > 0).DefaultIfEmpty(5).Min();
        return TimeSpan.FromMilliseconds(Math.Clamp(seconds * 250, 250, 5000));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        using var timer = new PeriodicTimer(Interval(o), time);
        long sweeps = 0;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            Sweep(o);
            var open = connections.Count;
            if (_wave.Observe(open, GC.CollectionCount(2), Environment.TickCount64))
            {
                logger.LogInformation("Many connections closed ({Open} open now): starting a background collection", open);
                GC.Collect(2, GCCollectionMode.Forced, blocking: false); // background: concurrent GC is on (Xmpp.Server.csproj)
            }
            if (++sweeps % 240 == 0) throttle.Prune();
        }
    }

    internal void Sweep(XmppServerOptions o)
    {
        var now = time.GetUtcNow();
        foreach (var stream in connections.All)
        {
            if (stream.IsClosing) continue;
            if (stream.State != StreamState.Bound)
            {
                if (o.Limits.UnauthenticatedTimeoutSeconds > 0 && now - stream.ConnectedAt > TimeSpan.FromSeconds(o.Limits.UnauthenticatedTimeoutSeconds))
                    stream.CloseWithError(StreamErrors.ConnectionTimeout, "Negotiation took too long");
                continue;
            }
            long quiet = stream.MillisecondsSinceRead;
            if (o.Ping.IdleSeconds > 0)
            {
                if (quiet > (o.Ping.IdleSeconds + o.Ping.TimeoutSeconds) * 1000L)
                {
                    stream.CloseWithError(StreamErrors.ConnectionTimeout, "No answer to ping");
                    continue;
                }
                if (quiet > o.Ping.IdleSeconds * 1000L && stream.Session is { } session)
                {
                    // One ping per quiet period: a new one only after the client has said something.
                    long mark = Environment.TickCount64 - quiet;
                    if (!_pinged.TryGetValue(stream, out var last) || last != mark)
                    {
                        _pinged[stream] = mark;
                        session.Send(new Element("iq", Ns.Client)
                            .SetAttr("type", "get").SetAttr("id", "ping-" + mark.ToString(System.Globalization.CultureInfo.InvariantCulture))
                            .SetAttr("from", stream.Domain).SetAttr("to", session.Jid.ToString())
                            .Add(new Element("ping", Ns.Ping)));
                    }
                }
            }
            if (o.Ping.WhitespaceKeepaliveSeconds > 0 && stream.MillisecondsSinceWrite > o.Ping.WhitespaceKeepaliveSeconds * 1000L)
                stream.SendKeepalive();
        }
        if (_pinged.Count > connections.Count * 2 + 64)
            foreach (var s in _pinged.Keys.Where(s => s.State == StreamState.Closed).ToList()) _pinged.Remove(s);
    }
}
