using System.Collections.Concurrent;

namespace Xmpp.Bench;

/// Opens many authenticated sessions with bounded concurrency, spreading source addresses.
public static class Sessions
{
    public static async Task<(BenchClient?[] Clients, int Failures, string? FirstError)> LoginManyAsync(
        BenchOptions o, SourceAddresses sources, int count, Func<int, string> user, Func<int, string> resource,
        Action<int, BenchClient>? configure, bool presence, CancellationToken ct, int addressOffset = 0, Target? target = null)
    {
        var clients = new BenchClient?[count];
        int failures = 0;
        string? firstError = null;
        await Parallel.ForEachAsync(Enumerable.Range(0, count),
            new ParallelOptions { MaxDegreeOfParallelism = o.Concurrency, CancellationToken = ct },
            async (i, token) =>
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                timeout.CancelAfter(TimeSpan.FromSeconds(o.LoginTimeoutSeconds));
                try
                {
                    var c = await BenchClient.LoginAsync(target ?? o.Target, sources.For(addressOffset + i), user(i), o.Password,
                        resource(i), presence, timeout.Token, client => configure?.Invoke(i, client));
                    clients[i] = c;
                }
                catch (Exception e) when (!token.IsCancellationRequested)
                {
                    Interlocked.Increment(ref failures);
                    Interlocked.CompareExchange(ref firstError, $"{user(i)}: {e.GetType().Name}: {e.Message}", null);
                }
            });
        return (clients, failures, firstError);
    }

    public static async Task CloseAllAsync(IEnumerable<BenchClient?> clients)
    {
        await Parallel.ForEachAsync(clients.Where(c => c is not null), new ParallelOptions { MaxDegreeOfParallelism = 200 },
            async (c, _) => await c!.DisposeAsync());
    }

    public static void Log(string message) => Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");
}
