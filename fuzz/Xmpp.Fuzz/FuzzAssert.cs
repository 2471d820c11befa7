namespace Xmpp.Fuzz;

/// A broken invariant: thrown by a harness so that afl-fuzz records the input as a crash.
public sealed class FuzzInvariantException(string message) : Exception(message);

public static class FuzzAssert
{
    public static void True(bool condition, string what)
    {
        if (!condition) throw new FuzzInvariantException(what);
    }

    // Work per input must stay proportional to the input: the allowance is generous (an element tree costs tens of
    // bytes per input byte) but a quadratic or unbounded allocation blows through it at once.
    public const int BytesPerInputByte = 256;
    public const int FixedAllowance = 4 * 1024 * 1024;

    public static T WithinAllocationBound<T>(int inputLength, Func<T> work)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = work();
        long spent = GC.GetAllocatedBytesForCurrentThread() - before;
        long allowed = FixedAllowance + (long)BytesPerInputByte * inputLength;
        if (spent > allowed)
            throw new FuzzInvariantException($"{spent} bytes allocated for {inputLength} input bytes (allowed {allowed})");
        return result;
    }
}
