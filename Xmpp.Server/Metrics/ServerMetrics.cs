using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Modules.Muc;
using Xmpp.Server.Modules.Offline;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Metrics;

/// The server's instruments (meter "xmppd", System.Diagnostics.Metrics). Counters are incremented where things
/// happen; gauges are read from the services that know them only when a scrape asks, so an unscraped server pays a
/// counter increment per event and nothing else.
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "xmppd";

    /// From half a millisecond to ten seconds: handshakes and commits live there, not in OpenTelemetry's default buckets.
    public static readonly double[] SecondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Meter _meter = new(MeterName);
    private readonly IServiceProvider _services;

    public ServerMetrics(IServiceProvider services)
    {
        _services = services;
        Logins = _meter.CreateCounter<long>("xmppd.logins", "{login}", "SASL authentications by result (success, failure)");
        StanzasIn = _meter.CreateCounter<long>("xmppd.stanzas.received", "{stanza}", "Stanzas received from clients, by kind");
        StanzasOut = _meter.CreateCounter<long>("xmppd.stanzas.sent", "{stanza}", "Stanzas written to clients, by kind");
        Routed = _meter.CreateCounter<long>("xmppd.messages.routed", "{message}",
            "Messages to local accounts by outcome: delivered to a resource, stored (offline spool, requests), bounced with an error");
        TlsHandshake = _meter.CreateHistogram<double>("xmppd.tls.handshake.duration", "s", "TLS handshakes of client connections",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        Refused = _meter.CreateCounter<long>("xmppd.limits.refused", "{stanza}",
            "Requests refused by an abuse limit or the block list, by limit (message-rate, subscription-rate, blocked, ...)");
        UploadBytes = _meter.CreateCounter<long>("xmppd.upload.bytes", "By", "Bytes of completed HTTP uploads");
        _meter.CreateObservableGauge("xmppd.connections", ConnectionsByTransport, "{connection}", "Open client connections by transport");
        _meter.CreateObservableGauge("xmppd.sessions", () => Get<ISessionDirectory>()?.Count ?? 0, "{session}", "Bound client sessions");
        _meter.CreateObservableGauge("xmppd.send_queue.stanzas", QueuedStanzas, "{stanza}",
            "Stanzas queued for clients' writers, summed over connections");
        _meter.CreateObservableGauge("xmppd.offline.messages", () => Get<OfflineModule>()?.KnownSpooled ?? 0, "{message}",
            "Messages in the offline spool of the accounts whose spool count is loaded");
        _meter.CreateObservableGauge("xmppd.muc.rooms", () => Rooms(s => s.LoadedRooms), "{room}", "Rooms in memory");
        _meter.CreateObservableGauge("xmppd.muc.occupants", () => Rooms(s => s.Occupants), "{occupant}", "Occupants of the rooms in memory");
    }

    /// The meter of this server instance (the exporter listens to it alone).
    public Meter Meter => _meter;

    public Counter<long> Logins { get; }
    public Counter<long> StanzasIn { get; }
    public Counter<long> StanzasOut { get; }
    public Counter<long> Routed { get; }
    public Histogram<double> TlsHandshake { get; }
    public Counter<long> UploadBytes { get; }
    public Counter<long> Refused { get; }

    /// Counts one request refused by the named abuse limit.
    public void Refuse(string limit) => Refused.Add(1, Tag("limit", limit));

    public static KeyValuePair<string, object?> Tag(string name, string value) => new(name, value);

    public void Login(bool success) => Logins.Add(1, Tag("result", success ? "success" : "failure"));

    public void Route(string outcome) => Routed.Add(1, Tag("outcome", outcome));

    /// resumed: whether the client resumed an earlier TLS session (null when OpenSSL cannot be asked); the tag lets an
    /// operator see how many reconnecting clients skip the full handshake.
    public void Handshake(long startedTimestamp, bool? resumed = null) => TlsHandshake.Record(Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds,
        new KeyValuePair<string, object?>("resumed", resumed switch { true => "true", false => "false", null => "unknown" }));

    private T? Get<T>() where T : class => _services.GetService<T>();

    private IEnumerable<Measurement<int>> ConnectionsByTransport()
    {
        var tracker = Get<ConnectionTracker>();
        if (tracker is null) yield break;
        foreach (var group in tracker.All.GroupBy(s => s.Transport))
            yield return new Measurement<int>(group.Count(), Tag("transport", group.Key));
    }

    private long QueuedStanzas() => Get<ConnectionTracker>()?.All.Sum(s => (long)s.QueuedStanzas) ?? 0;

    private int Rooms(Func<MucService, int> count) => Get<MucModule>()?.Services.Values.Sum(count) ?? 0;

    public void Dispose() => _meter.Dispose();
}
