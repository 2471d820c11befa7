using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol;

/// <summary>RFC 6120 §4.9.3 stream error conditions and the element that carries them.</summary>
public static class StreamErrors
{
    public const string BadFormat = "bad-format";
    public const string BadNamespacePrefix = "bad-namespace-prefix";
    public const string Conflict = "conflict";
    public const string ConnectionTimeout = "connection-timeout";
    public const string HostGone = "host-gone";
    public const string HostUnknown = "host-unknown";
    public const string ImproperAddressing = "improper-addressing";
    public const string InternalServerError = "internal-server-error";
    public const string InvalidFrom = "invalid-from";
    public const string InvalidNamespace = "invalid-namespace";
    public const string InvalidXml = "invalid-xml";
    public const string NotAuthorized = "not-authorized";
    public const string NotWellFormed = "not-well-formed";
    public const string PolicyViolation = "policy-violation";
    public const string RemoteConnectionFailed = "remote-connection-failed";
    public const string Reset = "reset";
    public const string ResourceConstraint = "resource-constraint";
    public const string RestrictedXml = "restricted-xml";
    public const string SeeOtherHost = "see-other-host";
    public const string SystemShutdown = "system-shutdown";
    public const string UndefinedCondition = "undefined-condition";
    public const string UnsupportedEncoding = "unsupported-encoding";
    public const string UnsupportedFeature = "unsupported-feature";
    public const string UnsupportedStanzaType = "unsupported-stanza-type";
    public const string UnsupportedVersion = "unsupported-version";

    /// <summary>Builds the <c>&lt;stream:error/&gt;</c> element for a condition with optional text.</summary>
    public static Element Create(string condition, string? text = null)
    {
        var error = new Element("error", Ns.Streams).Add(new Element(condition, Ns.StreamErrors));
        if (!string.IsNullOrEmpty(text))
            error.Add(new Element("text", Ns.StreamErrors).SetAttr("xml:lang", "en").SetText(text));
        return error;
    }
}
