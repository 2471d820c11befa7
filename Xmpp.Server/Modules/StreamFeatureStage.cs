namespace Xmpp.Server.Modules;

/// When a stream feature is offered (RFC 6120 §4.3.2: features differ per negotiation step).
public enum StreamFeatureStage
{
    /// After TLS, before authentication.
    PreAuth,

    /// After SASL success, alongside resource binding.
    PostAuth,
}
