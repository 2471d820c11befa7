using Xmpp.Bench;

BenchOptions o;
try { o = BenchOptions.Parse(args); }
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchRunner.Usage);
    return 2;
}
if (o.Scenario is "" or "help" or "--help")
{
    Console.Error.WriteLine(BenchRunner.Usage);
    return o.Scenario == "" ? 2 : 0;
}
// Many thousands of sockets complete at once: start with enough pool threads for the handshakes.
ThreadPool.SetMinThreads(Math.Max(8, Environment.ProcessorCount * 4), Environment.ProcessorCount * 4);
var result = await BenchRunner.RunAsync(o);
Console.Out.WriteLine(result);
return 0;
