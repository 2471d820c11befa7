// The fuzzing entry point: `Xmpp.Fuzz HARNESS` under afl-fuzz (fuzz/run.sh sets that up), or
// `Xmpp.Fuzz HARNESS FILE...` to replay saved inputs outside the fuzzer and print what each one does.
using SharpFuzz;
using Xmpp.Fuzz;

Action<byte[]>? harness = null;
if (args.Length > 0 && args[0] == "selftest")
{
    // Checks the pipeline, not the server: fuzz/run.sh selftest 30 must report a crash ('!' in the input) and a hang ('~').
    harness = data =>
    {
        // Some instrumented code to run, or afl-fuzz refuses a target that shows no coverage.
        Xmpp.Protocol.Jid.TryParse(System.Text.Encoding.UTF8.GetString(data), out _);
        if (data.AsSpan().Contains((byte)'!')) throw new FuzzInvariantException("self-test crash");
        if (data.AsSpan().Contains((byte)'~')) Thread.Sleep(Timeout.Infinite);
    };
}
if (args.Length == 0 || (harness is null && !Harnesses.All.TryGetValue(args[0], out harness)))
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
