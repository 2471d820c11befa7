using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Xmpp.Server.Metrics;

namespace Xmpp.Tests.Support;

/// Listens to one server's xmppd.limits.refused counter (xmppd_limits_refused_total once exported) and sums it by its
/// limit tag. Other servers running in parallel tests have their own instrument, which is not counted.
public sealed class RefusalCounts : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

    public RefusalCounts(TestServer server)
    {
        var refused = server.Get<ServerMetrics>().Refused;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument, refused)) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "limit" && tag.Value is string limit) _counts.AddOrUpdate(limit, value, (_, n) => n + value);
        });
        _listener.Start();
    }

    public long this[string limit] => _counts.GetValueOrDefault(limit);

    public void Dispose() => _listener.Dispose();
}
