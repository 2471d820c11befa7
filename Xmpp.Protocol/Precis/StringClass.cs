namespace Xmpp.Protocol.Precis;

// The two PRECIS base string classes (RFC 8264 §4).
internal enum StringClass
{
    // RFC 8264 §4.2: letters and digits only, for usernames and localparts.
    Identifier,

    // RFC 8264 §4.3: also spaces, symbols and punctuation, for passwords, resources and nicknames.
    Freeform,
}
