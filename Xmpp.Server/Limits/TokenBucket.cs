namespace Xmpp.Server.Limits;

/// The one token bucket of the server's abuse limits: it refills at a sustained rate per second up to a burst, and
/// each event spends a token. A normal user stays inside the burst; only a sustained flood runs the bucket dry.
/// Not thread-safe by itself: RateLimiter locks around it.
public struct TokenBucket
{
    private double _tokens;
    private long _lastMilliseconds;
    private bool _started;

    /// Spends `cost` tokens if the bucket holds them; false (and nothing spent) when it does not.
    public bool TryTake(double perSecond, double burst, long nowMilliseconds, double cost = 1)
    {
        Refill(perSecond, burst, nowMilliseconds);
        if (_tokens < cost) return false;
        _tokens -= cost;
        return true;
    }

    /// True when the bucket has refilled completely, so forgetting it changes nothing.
    public bool IsFull(double perSecond, double burst, long nowMilliseconds)
    {
        Refill(perSecond, burst, nowMilliseconds);
        return _tokens >= burst;
    }

    private void Refill(double perSecond, double burst, long now)
    {
        if (!_started)
        {
            _started = true;
            _tokens = burst;
        }
        else if (now > _lastMilliseconds) _tokens = Math.Min(burst, _tokens + (now - _lastMilliseconds) / 1000.0 * perSecond);
        _lastMilliseconds = now;
    }
}
