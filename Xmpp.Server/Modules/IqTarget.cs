namespace Xmpp.Server.Modules;

/// Whom an IQ is addressed to, for handler dispatch (RFC 6120 §10.3, RFC 6121 §8.5).
public enum IqTarget
{
    /// The server's domain JID.
    Server,

    /// A local account's bare JID, sent by someone else (or by the account itself when no Self handler exists).
    Account,

    /// The sender's own account: no 'to', or 'to' equal to the sender's bare JID.
    Self,

    /// An unauthenticated stream during negotiation (XEP-0077 in-band registration before SASL).
    Stream,
}
