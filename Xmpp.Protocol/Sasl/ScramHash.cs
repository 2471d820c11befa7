namespace Xmpp.Protocol.Sasl;

/// <summary>The hash function a SCRAM mechanism is built on (RFC 5802, RFC 7677).</summary>
public enum ScramHash
{
    Sha1,
    Sha256,
    Sha512,
}
