namespace Xmpp.Protocol.Precis;

// The Unicode bidirectional classes the Bidi Rule of RFC 5893 distinguishes.
internal enum BidiClass
{
    L, R, AL, EN, ES, CS, ET, ON, BN, NSM, AN, WS,
}
