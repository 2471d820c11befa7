// The fuzzing entry point: `Xmpp.Fuzz HARNESS` under afl-fuzz (fuzz/run.sh sets that up), or
// `Xmpp.Fuzz HARNESS FILE...` to replay saved inputs outside the fuzzer and print what each one does.
using SharpFuzz;
using Xmpp.Fuzz;

if (args.Length == 0 || !Harnesses.All.TryGetValue(args[0], out var harness))
{
    Console.Error.WriteLine($"usage: Xmpp.Fuzz HARNESS [FILE...]; harnesses: {string.Join(", ", Harnesses.All.Keys)}");
    return 2;
}

if (args.Length > 1)
{
    int failures = 0;
    foreach (var file in args[1..])
    {
        try
        {
            harness(File.ReadAllBytes(file));
            Console.WriteLine($"ok     {file}");
        }
        catch (Exception e)
        {
            failures++;
            Console.WriteLine($"CRASH  {file}\n{e}");
        }
    }
    return failures == 0 ? 0 : 1;
}

// Out of process: the harness runs in a child process that SharpFuzz restarts after a crash, so a stack overflow or
// an abort is reported to afl-fuzz as a crash instead of taking the fork server down with it.
Fuzzer.OutOfProcess.Run(stream =>
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    harness(copy.ToArray());
});
return 0;
