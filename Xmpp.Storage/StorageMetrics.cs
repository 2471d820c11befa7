using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Xmpp.Storage;

// Instruments of the storage engines (meter "xmppd.storage"), exported by the server with its own.
public static class StorageMetrics
{
    public const string MeterName = "xmppd.storage";

    private static readonly Meter Meter = new(MeterName);

    // Time from the start of a group's write to its durable commit (write + fsync), per engine.
    private static readonly Histogram<double> Commit = Meter.CreateHistogram<double>(
        "xmppd.storage.commit.duration", unit: "s", description: "Time to write and fsync one group of storage writes",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });

    private static readonly Counter<long> Writes = Meter.CreateCounter<long>(
        "xmppd.storage.writes", unit: "{write}", description: "Writes made durable, per engine");

    // 1 per store while it holds writes because the disk is full (StorageStall), 0 otherwise.
    private static readonly UpDownCounter<int> StalledStores = Meter.CreateUpDownCounter<int>(
        "xmppd.storage.stalled", unit: "{store}", description: "Stores holding writes until the full disk has space again");

    // Writes refused at once (resource-constraint, wait) because the disk had been full for a while.
    private static readonly Counter<long> Refused = Meter.CreateCounter<long>(
        "xmppd.storage.refused", unit: "{write}", description: "Writes refused because the disk is full");

    public static void Stalled(string store, int delta) => StalledStores.Add(delta, new KeyValuePair<string, object?>("store", store));

    public static void RefusedWrite(string store) => Refused.Add(1, new KeyValuePair<string, object?>("store", store));

    public static long Start() => Stopwatch.GetTimestamp();

    public static void Committed(string engine, long started, int writes)
    {
        var tag = new KeyValuePair<string, object?>("engine", engine);
        Commit.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tag);
        if (writes > 0) Writes.Add(writes, tag);
    }
}
