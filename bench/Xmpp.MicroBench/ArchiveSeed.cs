using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;
using Xmpp.Storage.Postgres;

namespace Xmpp.MicroBench;

// Fills one user's MAM archive with count chat messages through the storage API, in batches (queued without waiting
// up to a bound, as the server's archiving does), for the latest-page benchmark of bench/compare.sh --storage: far
// faster than sending them through a server, and the records are what the server itself would have stored (peers,
// stanza ids, stamps one second apart ending now). Run with no server on the data folder.
//   dotnet run -c Release --project bench/Xmpp.MicroBench -- archive-seed embedded DATADIR|postgresql CONNSTRING OWNER@DOMAIN COUNT
public static class ArchiveSeed
{
    public static async Task RunAsync(string kind, string where, string owner, int count)
    {
        var (user, domain) = (owner.Split('@')[0], owner.Split('@')[1]);
        await using IStorage storage = kind switch
        {
            "embedded" => new LiteDbStorage(where),
            "postgresql" => await PostgresStorage.OpenAsync(where),
            _ => throw new ArgumentException("archive-seed: the storage is embedded or postgresql"),
        };
        var archive = storage.Archive("mam");
        var start = DateTimeOffset.UtcNow.AddSeconds(-count);
        var clock = Stopwatch.StartNew();
        var tasks = new List<Task>();
        for (var i = 0; i < count; i++)
        {
            var peer = string.Create(CultureInfo.InvariantCulture, $"u{1 + i % 100}@{domain}");
            var stanzaId = Guid.CreateVersion7(start.AddSeconds(i)).ToString("D"); // time-ordered, as the server makes them (ArchiveIds)
            var payload = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"<message xmlns=\"jabber:client\" from=\"{peer}/phone\" to=\"{owner}\" type=\"chat\" id=\"seed{i}\"><body>archived message {i}, "
                + $"long enough to look like a real one</body><stanza-id xmlns=\"urn:xmpp:sid:0\" by=\"{owner}\" id=\"{stanzaId}\"/></message>"));
            tasks.Add(archive.AppendAsync(user, start.AddSeconds(i), peer, payload, stanzaId).AsTask());
            if (storage.PendingWrites > 20_000)
            {
                await tasks[^1];
                await Task.WhenAll(tasks);
                tasks.Clear();
            }
            if (i > 0 && i % 100_000 == 0)
                Console.Error.WriteLine($"archive-seed: {i:N0} records, {i / clock.Elapsed.TotalSeconds:N0}/s");
        }
        await Task.WhenAll(tasks);
        await storage.FlushAsync();
        Console.WriteLine($"archive-seed: {count:N0} records for {user} in {clock.Elapsed.TotalSeconds:F1} s ({count / clock.Elapsed.TotalSeconds:N0}/s), {await archive.CountAsync(user):N0} in the archive");
    }
}
