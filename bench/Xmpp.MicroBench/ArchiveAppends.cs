using System.Diagnostics;
using System.Text;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;

namespace Xmpp.MicroBench;

// Archive appends per second and CPU time per append, old store (LiteDB collection) against the archive log, with the
// shape MAM gives them: many writers, each queuing without awaiting until a bound, 300-byte payloads, 200 owners.
// Not a BenchmarkDotNet benchmark: a durable append's cost is mostly the disk's, and each run needs a fresh directory.
//   dotnet run -c Release --project bench/Xmpp.MicroBench -- archive-appends [count]
public static class ArchiveAppends
{
    public static async Task RunAsync(int count)
    {
        foreach (var (name, logs) in new[] { ("LiteDB collection", new HashSet<string>()), ("archive log", new HashSet<string> { "mam" }) })
        {
            var n = logs.Count == 0 ? Math.Min(count, 20_000) : count;
            var directory = Path.Combine(Path.GetTempPath(), "archive-appends-" + Guid.NewGuid().ToString("N"));
            try
            {
                await using var storage = new LiteDbStorage(directory, logs);
                var (seconds, cpu) = await MeasureAsync(storage, n);
                Console.WriteLine($"{name}: {n:N0} appends in {seconds:F2} s = {n / seconds:N0}/s, CPU {cpu * 1e6 / n:F1} µs per append");
            }
            finally
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private static async Task<(double Seconds, double Cpu)> MeasureAsync(IStorage storage, int count)
    {
        var archive = storage.Archive("mam");
        var payload = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' from='u1@bench.localhost/r' to='u2@bench.localhost' type='chat' id='m1'>"
            + "<body>" + new string('x', 120) + "</body><stanza-id xmlns='urn:xmpp:sid:0' by='u2@bench.localhost' id='0b3c'/></message>");
        await archive.AppendAsync("warmup", DateTimeOffset.UtcNow, "peer@bench.localhost", payload);
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var tasks = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            tasks.Add(archive.AppendAsync($"u{i % 200}", DateTimeOffset.UtcNow, $"u{(i + 1) % 200}@bench.localhost", payload, Guid.NewGuid().ToString()).AsTask());
            // As QueuedWrites does: past 10,000 writes behind, the sender waits for its own.
            if (storage.PendingWrites > 10_000)
                await tasks[^1];
        }
        await Task.WhenAll(tasks);
        clock.Stop();
        process.Refresh();
        return (clock.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu).TotalSeconds);
    }
}
