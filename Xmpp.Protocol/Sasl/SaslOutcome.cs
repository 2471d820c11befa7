namespace Xmpp.Protocol.Sasl;

/// <summary>What a server-side SASL step decided: keep exchanging messages, accept, or reject.</summary>
public enum SaslOutcome
{
    Continue,
    Success,
    Failure,
}
