namespace Xmpp.Server.Modules.Push;

/// XEP-0357 push notifications, section Xmpp:Push.
public sealed class PushOptions
{
    /// Off: no notifications are published and urn:xmpp:push:0 is not announced (enable still stores registrations).
    public bool Enabled { get; set; } = true;

    /// Sends the message text as last-message-body. Off by default, as in Prosody's mod_cloud_notify: the app server
    /// belongs to the client's vendor, and the text would pass through it and the phone platform's push service.
    /// Encrypted messages never carry a body here.
    public bool IncludeBody { get; set; } = false;

    /// Sends the sender's JID as last-message-sender (the summary form's field; off keeps that metadata private).
    public bool IncludeSender { get; set; } = true;

    /// At most one notification per registration in this many seconds; messages in between are counted and sent as
    /// one notification when the interval has passed (if the device has not come back by then).
    public int MinIntervalSeconds { get; set; } = 5;

    /// Failed publishes in a row (errors or no answer) after which a registration is disabled, as mod_cloud_notify
    /// does; permanent errors (item-not-found, not-authorized, forbidden, ...) disable it at once.
    public int MaxErrors { get; set; } = 5;

    /// Seconds to wait for the app server's answer to a publish.
    public int TimeoutSeconds { get; set; } = 30;
}
