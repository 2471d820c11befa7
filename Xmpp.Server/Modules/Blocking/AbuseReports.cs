using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Blocking;

/// One XEP-0377 report: who reported whom, why, and copies of the reported messages from the reporter's archive.
public sealed record AbuseReport(
    DateTimeOffset Time,
    string Reporter,
    string Reported,
    string Reason,
    string? Text,
    IReadOnlyList<string> StanzaIds,
    IReadOnlyList<string> Messages);

/// Reports kept for the admins in the key-value store under an owner no account can have ('@' is not allowed in a
/// username), one document per report keyed by time, so a listing comes back in the order they were made. Bounded:
/// each account may file MaxPerReporterPerDay, and the store keeps at most MaxStored until an admin clears them.
public sealed class AbuseReports(IStorage storage, TimeProvider time)
{
    public const string Owner = "@abuse-reports";
    public const int MaxStored = 10_000;
    public const int MaxPerReporterPerDay = 50;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly ConcurrentDictionary<string, (DateOnly Day, int Count)> _perReporter = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _stored = -1;

    /// False when the report was not kept (the reporter's daily limit or the store's bound).
    public async ValueTask<bool> AddAsync(AbuseReport report)
    {
        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var (day, count) = _perReporter.GetValueOrDefault(report.Reporter);
        if (day == today && count >= MaxPerReporterPerDay) return false;
        await _gate.WaitAsync();
        try
        {
            if (_stored < 0) _stored = (await storage.KeyValue.ListAsync(Owner)).Count;
            if (_stored >= MaxStored) return false;
            var key = report.Time.UtcDateTime.ToString("yyyyMMdd'T'HHmmss.fffffff", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8];
            await storage.KeyValue.SetAsync(Owner, key, JsonSerializer.SerializeToUtf8Bytes(report, Json));
            _stored++;
            _perReporter[report.Reporter] = (today, day == today ? count + 1 : 1);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// Every kept report, oldest first.
    public async ValueTask<IReadOnlyList<AbuseReport>> ListAsync()
    {
        var documents = await storage.KeyValue.ListAsync(Owner);
        return documents.Select(d => JsonSerializer.Deserialize<AbuseReport>(d.Value, Json)!).ToList();
    }

    /// Removes every report; returns how many there were.
    public async ValueTask<int> ClearAsync()
    {
        await _gate.WaitAsync();
        try
        {
            var documents = await storage.KeyValue.ListAsync(Owner);
            await storage.KeyValue.DeleteAllAsync(Owner);
            _stored = 0;
            return documents.Count;
        }
        finally
        {
            _gate.Release();
        }
    }
}
