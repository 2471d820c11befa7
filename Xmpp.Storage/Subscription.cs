namespace Xmpp.Storage;

// RFC 6121 §2.1.2.5 subscription state of a roster item.
public enum Subscription
{
    None,
    To,
    From,
    Both,
}
