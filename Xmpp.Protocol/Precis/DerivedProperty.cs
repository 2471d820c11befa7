namespace Xmpp.Protocol.Precis;

// The value of the PRECIS derived property of a code point (RFC 8264 §8).
internal enum DerivedProperty
{
    // Allowed in both string classes.
    PValid,

    // ID_DIS in the IdentifierClass and FREE_PVAL in the FreeformClass: the class decides.
    FreePValid,

    // A join control, allowed only where RFC 5892 Appendix A.1/A.2 says so.
    ContextJ,

    // Allowed only where its RFC 5892 Appendix A rule holds.
    ContextO,

    Disallowed,

    Unassigned,
}
