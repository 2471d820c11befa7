// Sums the GC's allocation samples (AllocationTick, about one per 100 KB allocated) of a trace taken with
// `dotnet-trace collect --profile gc-verbose` by type, and divides by a message count:
//   dotnet run -c Release -- trace.nettrace MESSAGES [TOP] [--stacks]
// With --stacks, samples are grouped by type and the innermost frames of our own code (Xmpp.*) that allocated them,
// which says where in the path an allocation comes from, not only what it is.
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

var positional = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
bool stacks = args.Contains("--stacks");
if (positional.Length < 2)
{
    Console.Error.WriteLine("usage: alloc-by-type TRACE.nettrace MESSAGES [TOP] [--stacks]");
    return 2;
}
var bytes = new Dictionary<string, long>();
long total = 0;
void Count(string key, long amount)
{
    bytes[key] = bytes.GetValueOrDefault(key) + amount;
    total += amount;
}
if (stacks)
{
    var etlx = TraceLog.CreateFromEventPipeDataFile(positional[0]);
    using var log = new TraceLog(etlx);
    var source = log.Events.GetSource();
    source.Clr.GCAllocationTick += (GCAllocationTickTraceData tick) =>
    {
        var frames = new List<string>();
        bool ours = false;
        for (var s = tick.CallStack(); s is not null && frames.Count < 6; s = s.Caller)
        {
            var name = s.CodeAddress.FullMethodName;
            if (string.IsNullOrEmpty(name)) continue;
            bool isOurs = name.StartsWith("Xmpp.", StringComparison.Ordinal);
            if (!ours && !isOurs && frames.Count >= 2) { frames[^1] = name; continue; }
            ours |= isOurs;
            frames.Add(name);
        }
        Count((tick.TypeName ?? "?") + "\n           " + string.Join("\n           ", frames), tick.AllocationAmount64);
    };
    source.Process();
}
else
{
    using var source = new EventPipeEventSource(positional[0]);
    source.Clr.GCAllocationTick += (GCAllocationTickTraceData tick) => Count(tick.TypeName ?? "?", tick.AllocationAmount64);
    source.Process();
}
var messages = double.Parse(positional[1], System.Globalization.CultureInfo.InvariantCulture);
var top = positional.Length > 2 ? int.Parse(positional[2], System.Globalization.CultureInfo.InvariantCulture) : 30;
Console.WriteLine($"{total / messages:F0} B per message sampled in all");
foreach (var (type, sum) in bytes.OrderByDescending(kv => kv.Value).Take(top))
    Console.WriteLine($"{sum / messages,8:F0} B/msg {100.0 * sum / total,5:F1} %  {type}");
return 0;
