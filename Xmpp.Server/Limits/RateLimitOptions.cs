namespace Xmpp.Server.Limits;

/// Stanza and request rates (Xmpp:RateLimits): token buckets with a sustained rate and a burst above it. The bursts are
/// sized for the worst honest case (a client logging in with hundreds of rooms and contacts, a bot answering a busy
/// room), so only a sustained flood meets them. A rate of 0 turns that limit off. docs/security.md lists them all.
public sealed class RateLimitOptions
{
    public const string Section = "RateLimits";

    /// Messages per second an account may send (all its resources together), and the burst above it.
    public double MessagesPerSecond { get; set; } = 10;
    public int MessageBurst { get; set; } = 200;

    /// Presence stanzas per second and burst (joining many rooms at login is one presence each).
    public double PresencePerSecond { get; set; } = 5;
    public int PresenceBurst { get; set; } = 300;

    /// IQ requests (get and set) per second and burst (a login sends a few dozen; MAM catch-up pages more).
    public double IqPerSecond { get; set; } = 20;
    public int IqBurst { get; set; } = 500;

    /// One address may send this many times an account's rates and bursts, summed over every account it serves
    /// (users behind one NAT share an address).
    public double PerIpFactor { get; set; } = 10;

    /// Loopback addresses get no per-address bucket: there every client is a local reverse proxy's (WebSocket, BOSH)
    /// or a load generator's, so the address says nothing about who sends. Per-account rates still apply.
    public bool ExemptLoopback { get; set; } = true;

    /// Subscription requests an account may send per minute to contacts new to it, and the burst (a roster import).
    public double SubscriptionRequestsPerMinute { get; set; } = 20;
    public int SubscriptionRequestBurst { get; set; } = 200;

    /// Room joins per minute one account may make on a MUC service, and the burst (auto-joined bookmarks at login).
    public double MucJoinsPerMinute { get; set; } = 30;
    public int MucJoinBurst { get; set; } = 100;

    /// Nickname changes per minute of one occupant in one room, and the burst; each change is two presences to
    /// every occupant.
    public double MucNickChangesPerMinute { get; set; } = 2;
    public int MucNickChangeBurst { get; set; } = 5;

    /// XEP-0363 upload slots per minute one account may request, and the burst (a photo album shared at once).
    public double UploadSlotsPerMinute { get; set; } = 20;
    public int UploadSlotBurst { get; set; } = 100;
}
