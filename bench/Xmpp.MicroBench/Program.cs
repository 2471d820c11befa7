using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Xmpp.MicroBench -- --filter '*'        (all)
// dotnet run -c Release --project bench/Xmpp.MicroBench -- --filter '*Parser*' --job short
BenchmarkSwitcher.FromAssembly(typeof(Xmpp.MicroBench.Stanzas).Assembly).Run(args);
