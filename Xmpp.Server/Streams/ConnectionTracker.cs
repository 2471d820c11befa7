using System.Collections.Concurrent;

namespace Xmpp.Server.Streams;

/// Every open stream (authenticated or not), for connection limits per IP, the idle sweeper and shutdown.
public sealed class ConnectionTracker
{
    private readonly ConcurrentDictionary<XmppStream, byte> _streams = new();
    private readonly ConcurrentDictionary<string, int> _perIp = new(StringComparer.Ordinal);

    public int Count => _streams.Count;

    public IEnumerable<XmppStream> All => _streams.Keys;

    /// Registers a stream; false when its address already has the maximum number of connections.
    public bool TryAdd(XmppStream stream, int maxPerIp)
    {
        var ip = stream.RemoteAddress;
        var n = _perIp.AddOrUpdate(ip, 1, (_, c) => c + 1);
        _streams[stream] = 0;
        return n <= maxPerIp;
    }

    public void Remove(XmppStream stream)
    {
        if (!_streams.TryRemove(stream, out _)) return;
        var ip = stream.RemoteAddress;
        while (_perIp.TryGetValue(ip, out var c))
        {
            if (c <= 1 ? _perIp.TryRemove(new KeyValuePair<string, int>(ip, c)) : _perIp.TryUpdate(ip, c - 1, c)) break;
        }
    }
}
