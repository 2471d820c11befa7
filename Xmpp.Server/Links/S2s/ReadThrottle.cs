namespace Xmpp.Server.Links.S2s;

/// A token bucket over bytes read from one server connection, as client streams have (Xmpp:Limits): a peer above the
/// sustained rate is slowed down by reading from it later, never dropped for it.
internal sealed class ReadThrottle(int bytesPerSecond, int burstBytes)
{
    private double _tokens = burstBytes;
    private long _at = Environment.TickCount64;

    /// Counts bytes just read; what the peer owes is waited for before the next read.
    public void Took(long bytes)
    {
        Refill();
        _tokens -= bytes;
    }

    public Task WaitAsync(CancellationToken ct)
    {
        Refill();
        return _tokens >= 0 ? Task.CompletedTask : Task.Delay(TimeSpan.FromSeconds(-_tokens / bytesPerSecond), ct);
    }

    private void Refill()
    {
        long now = Environment.TickCount64;
        _tokens = Math.Min(burstBytes, _tokens + (now - _at) * (double)bytesPerSecond / 1000.0);
        _at = now;
    }
}
