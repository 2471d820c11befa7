namespace Xmpp.Server.Modules.Pep;

/// Why a PEP operation failed: the RFC 6120 stanza condition, optionally an XEP-0060 pubsub#errors condition
/// (with the unsupported feature for "unsupported") and a text.
public sealed record PepError(string Condition, string? PubSubCondition = null, string? Text = null, string? Feature = null);
