using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Xmpp.MicroBench -- --filter '*'        (all)
// dotnet run -c Release --project bench/Xmpp.MicroBench -- --filter '*Parser*' --job short
// dotnet run -c Release --project bench/Xmpp.MicroBench -- archive-appends [count]   (store appends/s, not BenchmarkDotNet)
if (args is ["archive-appends", ..])
{
    await Xmpp.MicroBench.ArchiveAppends.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 200_000);
    return;
}
// dotnet run -c Release --project bench/Xmpp.MicroBench -- archive-seed embedded DATADIR|postgresql CONNSTRING OWNER@DOMAIN COUNT
if (args is ["archive-seed", var kind, var where, var owner, var count])
{
    await Xmpp.MicroBench.ArchiveSeed.RunAsync(kind, where, owner, int.Parse(count));
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Xmpp.MicroBench.Stanzas).Assembly).Run(args);
