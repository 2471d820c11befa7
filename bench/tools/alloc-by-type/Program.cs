// Sums the GC's allocation samples (AllocationTick, about one per 100 KB allocated) of a trace taken with
// `dotnet-trace collect --profile gc-verbose` by type, and divides by a message count:
//   dotnet run -c Release -- trace.nettrace MESSAGES [TOP]
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: alloc-by-type TRACE.nettrace MESSAGES [TOP]");
    return 2;
}
var bytes = new Dictionary<string, long>();
long total = 0;
using (var source = new EventPipeEventSource(args[0]))
{
    source.Clr.GCAllocationTick += (GCAllocationTickTraceData tick) =>
    {
        var name = tick.TypeName ?? "?";
        bytes[name] = bytes.GetValueOrDefault(name) + tick.AllocationAmount64;
        total += tick.AllocationAmount64;
    };
    source.Process();
}
var messages = double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
var top = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 30;
Console.WriteLine($"{total / messages:F0} B per message sampled in all");
foreach (var (type, sum) in bytes.OrderByDescending(kv => kv.Value).Take(top))
    Console.WriteLine($"{sum / messages,8:F0} B/msg {100.0 * sum / total,5:F1} %  {type}");
return 0;
