namespace Xmpp.Bench;

/// Collects latencies in microseconds from many threads without locks; percentiles sort a copy once.
public sealed class LatencyRecorder(int capacity)
{
    private readonly int[] _values = new int[capacity];
    private int _count;

    public int Count => Math.Min(Volatile.Read(ref _count), _values.Length);

    public void Record(long micros)
    {
        int i = Interlocked.Increment(ref _count) - 1;
        if (i < _values.Length) _values[i] = (int)Math.Min(micros, int.MaxValue);
    }

    /// Percentiles in milliseconds for each requested fraction (0.5, 0.99, 0.999); NaN with no samples.
    public double[] PercentilesMs(params double[] fractions)
    {
        int n = Count;
        var copy = _values.AsSpan(0, n).ToArray();
        Array.Sort(copy);
        return fractions.Select(f => n == 0 ? double.NaN : copy[Math.Min(n - 1, (int)Math.Ceiling(f * n) - 1)] / 1000.0).ToArray();
    }
}
